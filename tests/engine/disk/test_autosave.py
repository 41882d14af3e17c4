import numpy as np
import pytest

from napari_unet.engine.disk import autosave
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel


def _folder(name, path=None, data=None):
    return autosave.folder_for(autosave.identity_of(name, path, data))


def test_folder_beside_the_image_file_keeps_its_extension(tmp_path):
    for name in ("cells.tif", "cells.png"):
        (tmp_path / name).write_bytes(b"")
    assert _folder("cells", tmp_path / "cells.tif") == tmp_path / "cells.tif.napari-unet"
    assert _folder("cells", tmp_path / "cells.png") == tmp_path / "cells.png.napari-unet"


def test_in_memory_images_go_to_the_cache_with_a_readable_name(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_AUTOSAVE", str(tmp_path / "cache"))
    folder = _folder("my image: 1/2", None, np.zeros((4, 4)))
    assert folder.parent == tmp_path / "cache" and folder.name.startswith("my_image_1_2-")
    assert _folder("x", tmp_path / "missing_dir" / "x.tif").parent == tmp_path / "cache"
    assert _folder("細胞", None, np.zeros((4, 4))).name.startswith("細胞-")


@pytest.mark.parametrize("names", [("細胞", "核"), ("Zellkern ä", "Zellkern ö"), ("image [1]", "image (1)", "image_1")])
def test_names_that_read_alike_never_share_a_folder(tmp_path, monkeypatch, names):
    monkeypatch.setenv("NAPARI_UNET_AUTOSAVE", str(tmp_path / "cache"))
    data = np.zeros((4, 4))
    assert len({_folder(n, None, data) for n in names}) == len(names)


def test_files_of_the_same_name_in_other_folders_never_share_a_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_AUTOSAVE", str(tmp_path / "cache"))
    a, b = (tmp_path / p / "A01.tif" for p in ("plate1", "plate2"))
    for path in (a, b):
        path.parent.mkdir()
        path.write_bytes(b"")
        path.parent.chmod(0o500)  # not writable: the cache (root writes anyway; then beside the file)
    try:
        assert _folder("A01", a) != _folder("A01", b)
    finally:
        for path in (a, b):
            path.parent.chmod(0o700)
    assert autosave.folder_for(autosave.ImageIdentity("file:/x/plate1/A01.tif", "A01.tif")) != \
        autosave.folder_for(autosave.ImageIdentity("file:/x/plate2/A01.tif", "A01.tif"))


def test_round_trip_and_only_for_the_same_image(tmp_path):
    ann = np.zeros((3, 20, 30), np.uint8)
    ann[1, 5, 5] = 2
    model = SegmentationModel.new(UNetConfig(depth=1, width=4))
    image = np.arange(3 * 20 * 30).reshape(3, 20, 30)
    me = autosave.identity_of("cells", None, image)
    written = autosave.save(tmp_path / "a", me, ann, model)
    assert [p.name for p in written] == ["annotations.tif", "model.pt"]
    np.testing.assert_array_equal(autosave.load_annotations(tmp_path / "a", me, (3, 20, 30)), ann)
    assert autosave.load_annotations(tmp_path / "a", me, (20, 30)) is None  # another image's shape
    assert autosave.model_path(tmp_path / "a", me).name == "model.pt"
    other = autosave.identity_of("cells", None, image + 1)  # same name and shape, other pixels
    assert autosave.load_annotations(tmp_path / "a", other, (3, 20, 30)) is None
    assert autosave.model_path(tmp_path / "a", other) is None
    assert autosave.load_annotations(tmp_path / "nothing", me, (20, 30)) is None


def test_damaged_autosave_is_ignored(tmp_path):
    me = autosave.identity_of("a", None, np.zeros((20, 30)))
    autosave.save(tmp_path / "a", me)
    (tmp_path / "a" / "annotations.tif").write_bytes(b"not a tiff")
    assert autosave.load_annotations(tmp_path / "a", me, (20, 30)) is None
