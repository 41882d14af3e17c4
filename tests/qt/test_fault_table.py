"""The widget's fault table (issue #47): a careless user, a full disk, damaged files, extreme names and
labels, odd axes, closing the viewer mid-work. Each case ends in one clear notification, the viewer
usable, and nothing the user painted or trained lost. The CLI's table is tests/test_faults*.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet._qt import notify as notifications
from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.model.config import UNetConfig
from napari_unet.sample_data import sample_paths
from tests.qt.conftest import train_until_first_preview

TIMEOUT_MS = 120_000
FULL = OSError(28, "No space left on device")


@pytest.fixture
def messages(monkeypatch):
    """Every notification the widget shows: [(message, error)]."""
    shown = []
    for module in ("export_section", "annotate_section", "train_section", "apply_section", "review_section",
                   "model_choice", "autosave", "widget"):
        monkeypatch.setattr(f"napari_unet._qt.{module}.notify", lambda m, error=False: shown.append((m, error)))
    return shown


@pytest.fixture
def ui(make_napari_viewer, small_model, messages):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    w.time_budget.value = 5
    image, scrib = _crop()
    viewer.add_image(image, name="img")
    w.new_annotations().data = scrib
    w.adopt_model(small_model, "a small model")
    yield viewer, w, messages
    w.close_trainer(wait_for_model=0)


def _crop():
    """A nuclei crop and its scribbles (the part of the sample's scribbles with background and nuclei)."""
    return io.read_image(sample_paths()["image"])[:160, :200], io.read_image(sample_paths()["scribbles"])[:160, :200]


def _errors(messages) -> list[str]:
    return [m for m, error in messages if error]


# ---- every writer on a full disk -------------------------------------------------------------------

WRITERS = {
    "model": ("save_model", "model.pt", "torch.save"),
    "masks": ("export_masks", "masks.tif", "tifffile.imwrite"),
    "measurements": ("export_measurements", "objects.csv", "csv.writer"),
    "torchscript": ("export_model", "m_ts.pt", "napari_unet.engine.disk.export.write_bytes"),
    "onnx": ("export_model", "m.onnx", "napari_unet.engine.disk.export.save_onnx"),
    "bioimageio": ("export_model", "m.zip", "napari_unet.engine.disk.export.save_bioimageio"),
}


@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_full_disk_for_every_writer_is_one_message_and_no_file(ui, tmp_path, monkeypatch, writer):
    viewer, w, messages = ui
    w._show_prediction(viewer.layers["img"], np.zeros((160, 200), np.uint16))
    method, name, target = WRITERS[writer]

    def full(*args, **kwargs):
        raise FULL
    monkeypatch.setattr(target, full)
    fmt = {"torchscript": "torchscript", "onnx": "onnx", "bioimageio": "bioimageio"}.get(writer)
    result = getattr(w, method)(tmp_path / name, fmt) if fmt else getattr(w, method)(tmp_path / name)
    assert not result and any("No space left" in m or "disk may be full" in m for m in _errors(messages)), messages
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")] and not list(tmp_path.glob(".*part*"))
    assert w.model is not None and "img annotations" in viewer.layers and w.train_button.enabled


def test_a_full_disk_for_the_autosave_is_one_message_and_training_goes_on(ui, monkeypatch):
    viewer, w, messages = ui
    monkeypatch.setattr("tifffile.imwrite", lambda *a, **k: (_ for _ in ()).throw(FULL))
    assert w.autosave([(viewer.layers["img"], viewer.layers["img annotations"])]) == []
    assert any("autosave failed" in m for m in _errors(messages))


# ---- damaged and truncated model files -------------------------------------------------------------

@pytest.mark.parametrize("damage", ["bytes", "truncated", "huge weight"])
def test_a_damaged_model_file_is_refused_and_the_current_model_kept(ui, tmp_path, damage):
    _, w, messages = ui
    path = modelfile.save_model(w.model, tmp_path / "m.pt")
    if damage == "bytes":
        with open(path, "r+b") as f:
            f.seek(path.stat().st_size // 2)
            f.write(np.random.default_rng(0).bytes(2000))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        import torch

        blob = torch.load(path, weights_only=True)
        next(v for k, v in blob["state_dict"].items() if k.endswith("weight"))[0] = 3.05e38
        torch.save(blob, path)
    current = w.model
    assert w.load_model(path) is None and w.model is current
    assert any(word in _errors(messages)[-1] for word in ("damaged", "truncated", "corrupted")), messages


# ---- names and labels at the extremes: the dock keeps its width -----------------------------------

@pytest.mark.parametrize("names", [", ".join(f"class number {i}" for i in range(50)), "x" * 3000])
def test_long_class_names_do_not_widen_the_dock(ui, names):
    _, w, _ = ui
    before = w.native.sizeHint().width()
    w.class_names.value = names
    w.update_model_info()
    assert w.native.sizeHint().width() <= max(before, 600) and len(w.paint_hint.value) < 300
    w.class_names.value = "object"
    assert w.native.sizeHint().width() <= max(before, 600)


def test_a_model_of_254_classes_keeps_the_model_line_short(ui):
    _, w, _ = ui
    w.adopt_model(_many_classes(), "a stroke of label 255 made this one")
    assert len(w.model_info.value) < 250 and w.native.sizeHint().width() < 700


def _many_classes():
    from napari_unet.engine.model.unet import SegmentationModel

    return SegmentationModel.new(UNetConfig(depth=1, width=2, n_classes=254))


def test_a_label_far_beyond_the_classes_asks_before_training(ui, monkeypatch):
    viewer, w, messages = ui
    w.workspace.leave()
    w.start_from.value = ""  # a new network: a class per label value
    viewer.layers["img annotations"].data[5:8, 5:8] = 255
    asked = []
    monkeypatch.setattr(notifications, "ask", lambda q: asked.append(q) or False)
    assert w.train() is False and not w.is_training
    assert "Label 255" in asked[0] and "254 classes" in asked[0] and "not trained" in w.status.value


# ---- odd axes, annotations of another shape, NaN images -------------------------------------------

@pytest.mark.parametrize("axes", ["XY", "YZX", "YXZ"])
def test_axes_the_widget_cannot_show_are_refused_with_how_to_type_them(make_napari_viewer, messages, axes):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    shape = {"XY": (40, 48), "YZX": (40, 3, 48), "YXZ": (40, 48, 3)}[axes]
    w.image_combo.value = viewer.add_image(np.random.default_rng(0).random(shape), name="odd")
    w.axes_edit.value = axes
    assert w.new_annotations() is None
    ann = viewer.add_labels(np.zeros(shape, np.uint8), name="odd annotations")  # painted by hand meanwhile
    ann.data[(1,) * len(shape)], ann.data[(2,) * len(shape)] = 1, 2
    w.annotation_combo.value = ann
    assert w.train() is False and w.predict() is None and not w.is_training
    assert len(messages) == 3 and all("last two axes must be Y and X" in m for m in _errors(messages)), messages
    w.close_trainer(wait_for_model=0)


def test_corrections_with_annotations_of_another_shape_change_nothing(ui):
    viewer, w, messages = ui
    w._show_prediction(viewer.layers["img"], np.zeros((160, 200), np.uint16))
    other = viewer.add_labels(np.zeros((50, 50), np.uint8), name="other")
    w.annotation_combo.value = other
    assert w.use_corrections() == 0 and not w.workspace.can_undo and "img objects" not in viewer.layers
    assert "do not fit" in _errors(messages)[-1]
    assert not w.undo_corrections()  # nothing to undo: nothing was applied


def test_an_all_nan_image_is_refused_and_some_nan_is_said(ui, qtbot):
    viewer, w, messages = ui
    w.image_combo.value = viewer.add_image(np.full((64, 64), np.nan, np.float32), name="nan")
    w.new_annotations().data[:8, :8] = 1
    viewer.layers["nan annotations"].data[30:34, 30:34] = 2
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.train()
    assert "no numbers" in _errors(messages)[-1] and w.model is not None
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    assert "failed" in w.status.value and "no numbers" in w.status.value  # not "prediction done"
    some = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    some[:4] = np.nan
    w.image_combo.value = viewer.add_image(some, name="some")
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    assert any("NaN or infinite" in m for m, _ in messages)


# ---- the working state: classes, Load model while training, the cache folder ---------------------

def test_fine_tuning_a_bundled_model_takes_the_classes_field(make_napari_viewer, messages, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    image, scrib = _crop()
    viewer.add_image(image, name="img")
    w.new_annotations().data = scrib
    w.class_names.value = "cell"
    train_until_first_preview(w, qtbot)  # from the bundled nuclei model
    assert w.model.summary.get("card") and w.model.config.class_names == ["cell"]
    w.close_trainer(wait_for_model=0)


def test_load_model_is_refused_while_training(ui, qtbot, tmp_path):
    _, w, messages = ui
    path = modelfile.save_model(w.model, tmp_path / "m.pt")
    w.time_budget.value = 30
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        w.train()
    assert w.load_model(path) is None and "press Stop" in _errors(messages)[-1]
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.stop()


def test_a_read_only_cache_is_one_message_on_lazy_predict(ui, qtbot, monkeypatch):
    import tempfile

    import dask.array as da

    viewer, w, messages = ui

    def read_only(*args, **kwargs):  # (a chmod would not stop root, who runs CI)
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    w.image_combo.value = viewer.add_image(da.from_array(_crop()[0], chunks=48), name="lazy")
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    assert "NAPARI_UNET_AUTOSAVE" in _errors(messages)[-1] and "failed" in w.status.value


# ---- closing the viewer mid-work -------------------------------------------------------------------

@pytest.mark.parametrize("how", ["close()", "the window's X"])
def test_closing_the_viewer_while_training_saves_the_round_and_ends_the_trainer(make_napari_viewer, qtbot, tmp_path,
                                                                               monkeypatch, how):
    from napari_unet.engine.disk import autosave

    monkeypatch.setenv("NAPARI_UNET_AUTOSAVE", str(tmp_path / "autosave"))
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    image, scrib = _crop()
    layer = viewer.add_image(image, name="img")
    w.new_annotations().data = scrib
    w.time_budget.value = 120
    with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
        w.train()
    identity = w.autosave_identity(layer)
    process = w._trainer.process
    if how == "close()":
        viewer.close()
    else:
        import contextlib

        viewer.window._qt_window.close()
        with contextlib.suppress(RuntimeError):  # napari's own clean-up, as its test fixture wants it
            viewer.close()
    qtbot.waitUntil(lambda: not process.is_alive(), timeout=15_000)
    saved = autosave.model_path(autosave.folder_for(identity), identity)
    assert saved is not None and modelfile.load_model(saved).summary["total_steps"] > 0  # the round is kept


def test_closing_the_viewer_during_predict_raises_nothing(make_napari_viewer, qtbot, small_model):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    viewer.add_image(np.random.default_rng(0).random((1024, 1024)).astype(np.float32), name="big")
    w.adopt_model(small_model, "small")
    worker = w.predict()
    viewer.close()  # a QProgressBar deleted under the running worker raised RuntimeError before
    qtbot.waitUntil(lambda: not worker.is_running, timeout=30_000)
