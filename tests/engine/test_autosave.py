import numpy as np

from napari_unet.engine import autosave
from napari_unet.engine.config import UNetConfig
from napari_unet.engine.model import SegmentationModel


def test_folder_beside_the_image_file(tmp_path):
    image = tmp_path / "cells.tif"
    image.write_bytes(b"")
    assert autosave.folder_for("cells", image) == tmp_path / "cells.napari-unet"


def test_in_memory_images_go_to_the_cache_with_a_safe_name(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_AUTOSAVE", str(tmp_path / "cache"))
    assert autosave.folder_for("my image: 1/2", None) == tmp_path / "cache" / "my_image_1_2"
    assert autosave.folder_for("x", tmp_path / "missing_dir" / "x.tif").parent == tmp_path / "cache"


def test_round_trip_and_shape_check(tmp_path):
    ann = np.zeros((3, 20, 30), np.uint8)
    ann[1, 5, 5] = 2
    model = SegmentationModel.new(UNetConfig(depth=1, width=4))
    written = autosave.save(tmp_path / "a", ann, model)
    assert [p.name for p in written] == ["annotations.tif", "model.pt"]
    np.testing.assert_array_equal(autosave.load_annotations(tmp_path / "a", (3, 20, 30)), ann)
    assert autosave.load_annotations(tmp_path / "a", (20, 30)) is None  # another image's shape
    assert autosave.model_path(tmp_path / "a").name == "model.pt"
    assert autosave.load_annotations(tmp_path / "nothing", (20, 30)) is None


def test_damaged_autosave_is_ignored(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "annotations.tif").write_bytes(b"not a tiff")
    assert autosave.load_annotations(tmp_path / "a", (20, 30)) is None
