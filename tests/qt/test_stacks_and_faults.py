"""The widget on stacks and lazy images, and what it does when things go wrong mid-session."""

import os
import signal

import numpy as np
import pytest

from napari_unet._qt.layers import camera
from napari_unet.engine.disk import io
from napari_unet.sample_data import sample_paths
from tests.qt.conftest import train_until_first_preview

TIMEOUT_MS = 120_000


@pytest.fixture
def viewer_widget(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    widget.time_budget.value = 5
    yield viewer, widget
    widget.close_trainer()


def _nuclei_crop():
    return io.read_image(sample_paths()["image"])[:160, :200], io.read_image(sample_paths()["scribbles"])[:160, :200]


def _add_annotated_crop(viewer, w, name):
    """A nuclei crop as layer ``name`` with its scribbles painted; returns the annotation layer."""
    image, scrib = _nuclei_crop()
    viewer.add_image(image, name=name)
    ann = w.new_annotations()
    ann.data = scrib
    return ann


def _stack():
    """A 3-plane z-stack of nuclei crops (planes 0 and 2 are different parts of the field)."""
    image = io.read_image(sample_paths()["image"])
    scrib = io.read_image(sample_paths()["scribbles"])
    sl = [(slice(0, 160), slice(0, 200)), (slice(160, 320), slice(0, 200)), (slice(320, 480), slice(200, 400))]
    return np.stack([image[s] for s in sl]), np.stack([scrib[s] for s in sl])


def test_paint_two_slices_train_and_predict_the_stack(viewer_widget, qtbot):
    viewer, w = viewer_widget
    stack, scrib = _stack()
    viewer.add_image(stack, name="stack")
    assert w.axes_edit.value == "ZYX"
    ann = w.new_annotations()
    assert ann.data.shape == stack.shape
    ann.data = np.where(np.isin(np.arange(3), [0, 2])[:, None, None], scrib, 0).astype(np.uint8)
    viewer.dims.set_point(0, 2)  # the user looks at plane 2 while training
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        assert w.train()
    preview = viewer.layers["stack prediction"].data
    assert preview.shape == stack.shape and preview[2].any() and not preview[1].any()
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    pred = viewer.layers["stack prediction"].data
    assert pred.shape == stack.shape and all(pred[z].max() > 0 for z in range(3))


def test_preview_follows_the_plane_on_screen(viewer_widget, qtbot):
    viewer, w = viewer_widget
    stack, scrib = _stack()
    viewer.add_image(stack, name="stack")
    w.new_annotations().data = np.where(np.isin(np.arange(3), [0, 2])[:, None, None], scrib, 0).astype(np.uint8)
    w.time_budget.value = 60
    viewer.dims.set_point(0, 0)
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        assert w.train()
    assert not viewer.layers["stack prediction"].data[1].any()
    viewer.dims.set_point(0, 1)  # the user moves to an unpainted plane while training runs
    qtbot.waitUntil(lambda: viewer.layers["stack prediction"].data[1].any(), timeout=60_000)
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.stop()


def test_lazy_dask_image_is_predicted_into_zarr(viewer_widget, qtbot, small_model):
    import dask.array as da
    viewer, w = viewer_widget
    image = _nuclei_crop()[0]
    w.adopt_model(small_model, "a small model")
    viewer.add_image(da.from_array(np.tile(image, (2, 2)), chunks=(100, 100)), name="lazy")
    w.image_combo.value = viewer.layers["lazy"]
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    labels = viewer.layers["lazy prediction"].data
    assert type(labels).__module__.startswith("zarr") and labels.shape == (320, 400)
    assert np.asarray(labels[:160, :200]).max() == 1


def test_autosave_then_reopen_restores_annotations_and_model(viewer_widget, qtbot, tmp_path):
    viewer, w = viewer_widget
    image, scrib = _nuclei_crop()
    path = io.write_mask(tmp_path / "cells.tif", image)
    layer = viewer.open(path)[0]
    w.image_combo.value = layer
    w.new_annotations().data = scrib
    train_until_first_preview(w, qtbot)
    folder = tmp_path / "cells.tif.napari-unet"  # beside the image file
    assert (folder / "annotations.tif").exists() and (folder / "model.pt").exists()
    viewer.layers.clear()
    w.workspace.leave()
    layer = viewer.open(path)[0]
    assert w.offer_autosave(layer) and "cells annotations" not in viewer.layers  # offered, not imposed
    assert w.restore_offered()
    np.testing.assert_array_equal(viewer.layers["cells annotations"].data, scrib)
    assert w.model is not None and w.model.summary["total_steps"] > 0


def test_in_memory_image_autosaves_to_the_cache(viewer_widget, qtbot, tmp_path):
    viewer, w = viewer_widget
    _add_annotated_crop(viewer, w, "mem")
    train_until_first_preview(w, qtbot)
    folders = list((tmp_path / "autosave").glob("mem-*"))  # its name and a hash of its identity
    assert len(folders) == 1 and (folders[0] / "annotations.tif").exists()


@pytest.mark.parametrize("fault", ["delete image", "rename image", "delete annotations", "paint"])
def test_layers_changed_during_training(viewer_widget, qtbot, fault):
    viewer, w = viewer_widget
    ann = _add_annotated_crop(viewer, w, "img")
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        assert w.train()
    if fault == "delete image":
        viewer.layers.remove("img")
    elif fault == "rename image":
        viewer.layers["img"].name = "renamed"
    elif fault == "delete annotations":
        viewer.layers.remove("img annotations")
    else:
        ann.data[:] = 0  # painting (here: erasing everything) while training reads its snapshot
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.stop()
    assert w.model is not None and "error" not in w.status.value
    if fault == "rename image":
        assert "renamed prediction" in viewer.layers


def test_training_process_crash_keeps_layers_and_recovers(viewer_widget, qtbot):
    viewer, w = viewer_widget
    scrib = np.array(_add_annotated_crop(viewer, w, "img").data, copy=True)
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        w.train()
    names = [layer.name for layer in viewer.layers]
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        os.kill(w._trainer.process.pid, signal.SIGKILL)  # a hard crash inside training
    assert "error" in w.status.value
    assert [layer.name for layer in viewer.layers] == names
    np.testing.assert_array_equal(viewer.layers["img annotations"].data, scrib)
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        assert w.train()  # a fresh trainer process
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.stop()
    assert w.model is not None


def test_closing_the_viewer_while_training_ends_the_trainer(make_napari_viewer, qtbot):
    import threading

    threads_before = threading.active_count()
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    _add_annotated_crop(viewer, w, "img")
    w.time_budget.value = 60
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        w.train()
    process = w._trainer.process
    viewer.close()
    qtbot.waitUntil(lambda: not process.is_alive(), timeout=10_000)
    qtbot.waitUntil(lambda: threading.active_count() <= threads_before + 1, timeout=10_000)


def test_3d_unet_on_an_anisotropic_volume(viewer_widget, qtbot, tmp_path):
    from ..conftest import make_spheres, volume_scribbles

    viewer, w = viewer_widget
    volume, mask = make_spheres((12, 48, 48), n=5, z_step=2.0)
    viewer.add_image(volume, name="vol", scale=(2.0, 1.0, 1.0))  # z step twice the pixel size
    w.use_3d.value = True
    w.new_annotations().data = volume_scribbles(mask, planes=(4, 8))
    viewer.dims.set_point(0, 12.0)  # world z 12 = plane 6, never painted
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        assert w.train()
    assert w.model.config.spatial_dims == 3 and w.model.config.voxel_size == (2.0, 1.0, 1.0)
    preview = viewer.layers["vol prediction"].data
    assert preview.shape == volume.shape and preview[6].any() and not preview[0].any()  # only plane 6 previewed
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    pred = viewer.layers["vol prediction"].data
    assert pred.shape == volume.shape
    assert all(pred[z].any() for z in range(12) if mask[z].any())
    # back to a 2D U-Net: the 3D model is kept on disk, not lost
    w.use_3d.value = False
    train_until_first_preview(w, qtbot)
    assert w.model.config.spatial_dims == 2
    assert (w.autosave_folder(viewer.layers["vol"]) / "model-3d.pt").exists()


def test_preview_of_a_large_image_goes_to_a_layer_made_at_train(viewer_widget, qtbot):
    """Images over 768 px preview the visible part only; its full-size layer exists from the click on."""
    viewer, w = viewer_widget
    image, scrib = (np.tile(a, (5, 5)) for a in _nuclei_crop())  # 800 x 1000
    viewer.add_image(image, name="big")
    ann = w.new_annotations()
    ann.data = scrib
    camera(viewer).center, camera(viewer).zoom = (200, 300), 4.0  # a small part on screen
    assert w.train()
    pred = viewer.layers["big prediction"]
    assert pred.data.shape == image.shape and not pred.data.any()
    assert viewer.layers.selection.active.name == "big annotations"  # (the widget hands out proxies)
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        pass
    painted = np.argwhere(pred.data > 0)
    assert len(painted) and np.all(painted.max(0) - painted.min(0) < 768)  # only a window was predicted
    assert pred.data.dtype == np.uint16  # instance ids narrowed for napari
    # later windows with narrower ids must not truncate the ids pasted before (the handler, called directly)
    from napari_unet.trainer.protocol import PreviewLabels

    w._on_preview(PreviewLabels(1, 0.0, np.full((4, 4), 70000, np.uint32), None, None, (0, 4, 0, 4), None))
    array = pred.data
    w._on_preview(PreviewLabels(2, 0.0, np.full((4, 4), 2, np.uint8), None, None, (4, 8, 0, 4), None))
    assert pred.data[0, 0] == 70000 and pred.data[4, 0] == 2 and pred.data.dtype == np.uint32
    assert pred.data is array  # written in place: no copy of the whole layer per preview
    assert w.last_prediction["big"][4, 0] == 2  # "Use corrections" compares with what is shown
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.stop()
