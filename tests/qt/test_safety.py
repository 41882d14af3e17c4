"""The widget never replaces what the user gave, and autosaves come back only to their own image."""

import numpy as np
import pytest

from napari_unet.engine.disk import io
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel

TIMEOUT_MS = 120_000


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    widget.workspace.use(SegmentationModel.new(UNetConfig(depth=1, width=4)))
    yield viewer, widget
    widget.close_trainer()


def test_export_and_save_never_replace_the_image_file(viewer_widget, tmp_path):
    viewer, w = viewer_widget
    path = io.write_mask(tmp_path / "cells.tif", np.arange(40 * 50, dtype=np.uint16).reshape(40, 50))
    before = path.read_bytes()
    layer = viewer.open(path)[0]
    w.image_combo.value = layer
    viewer.add_labels(np.ones((40, 50), np.uint8), name="cells prediction")
    assert w.export_masks(path) == []  # refused with a notification
    assert w.save_model(tmp_path / "cells.tif") is None
    assert path.read_bytes() == before
    assert w.export_masks(tmp_path / "cells_masks.tif") == [tmp_path / "cells_masks.tif"]


def test_an_autosave_comes_back_only_to_its_own_image(viewer_widget):
    viewer, w = viewer_widget
    image = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40)
    layer = viewer.add_image(image, name="mem")
    ann = viewer.add_labels(np.zeros((30, 40), np.uint8), name="mem annotations")
    ann.data[3, 3] = 2
    assert w.autosave([(layer, ann)])
    viewer.layers.clear()
    other = viewer.add_image(image[::-1].copy(), name="mem")  # the same name and shape, other pixels
    assert not w.offer_autosave(other) and "mem annotations" not in viewer.layers
    viewer.layers.clear()
    same = viewer.add_image(image.copy(), name="mem")  # the same image again
    assert w.offer_autosave(same) and w.restore_offered()
    assert viewer.layers["mem annotations"].data[3, 3] == 2


def test_predict_a_folder_keeps_mask_names_unique(viewer_widget, qtbot, tmp_path):
    viewer, w = viewer_widget
    image = (np.random.default_rng(0).random((32, 40)) * 255).astype(np.uint8)
    io.write_mask(tmp_path / "cells.tif", image)
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "cells.png", image)
    w.predict_target.value = "folder"
    w.folder.value = tmp_path
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    assert sorted(p.name for p in tmp_path.glob("*_masks.tif")) == ["cells_png_masks.tif", "cells_tif_masks.tif"]
