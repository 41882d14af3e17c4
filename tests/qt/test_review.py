"""Where to look next (regions to check, Next region, uncertainty, checked regions and their
validation score) and the bundled starting model, in the real widget."""

import numpy as np
import pytest

from napari_unet._qt.layers import camera
from napari_unet.engine.disk import io
from napari_unet.engine.prediction import uncertainty as unc
from napari_unet.engine.prediction.metrics import dice
from napari_unet.sample_data import sample_paths
from tests.conftest import make_blobs
from tests.qt.conftest import train_until_first_preview

TIMEOUT_MS = 120_000


def _torn_probabilities(shape, box):
    """Probabilities that are sure everywhere but inside ``box`` (y0, y1, x0, x1)."""
    fg = np.zeros(shape, np.float32)
    y0, y1, x0, x1 = box
    fg[y0:y1, x0:x1] = 0.5
    return np.stack([1 - fg, fg])


def test_regions_to_check_are_ranked_boxes_and_next_region_moves_the_view(viewer_widget):
    viewer, w = viewer_widget
    image, mask = make_blobs((256, 320), n=8, seed=1)
    layer = viewer.add_image(image, name="blobs")
    ann = w.new_annotations()
    w.show_uncertainty.value = True
    w._show_prediction(layer, mask.astype(np.uint16), _torn_probabilities(mask.shape, (150, 190, 200, 260)),
                       select=False)
    regions = viewer.layers["blobs regions to check"]
    assert len(regions.data) >= 1 and list(regions.features["rank"])[0] == 1
    assert "blobs uncertainty" in viewer.layers
    assert viewer.layers.selection.active.name == ann.name  # the brush stays where it was
    cam = camera(viewer)
    cam.center, cam.zoom = (0.0, 0.0), 0.1
    y0, x0, y1, x1 = w.next_region()
    assert y0 <= 170 <= y1 and x0 <= 230 <= x1  # the torn part, first
    np.testing.assert_allclose(cam.center[-2:], ((y0 + y1) / 2, (x0 + x1) / 2), atol=1)
    # the blobs are 13 px across: boxes of about one object (32 px), shown as a 64-px box would be,
    # so the objects around it stay in view
    assert y1 - y0 == x1 - x0 == unc.SMALL_REGION_SIDE
    canvas = np.asarray(viewer.canvas.size, float)
    assert cam.zoom > 1 and min(canvas / cam.zoom) == pytest.approx(unc.DEFAULT_REGION_SIDE / 0.6, rel=0.02)
    assert "region 1 of" in w.status.value


def test_next_region_without_a_prediction_says_so(viewer_widget):
    viewer, w = viewer_widget
    viewer.add_image(np.zeros((32, 32)), name="empty")
    assert w.next_region() is None


def test_checked_regions_are_held_out_and_scored_next_to_the_loss(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    try:
        w.start_from.value = ""  # from scratch: the bundled model would score well at once
        truth = io.read_image(sample_paths()["mask"])
        ann = viewer.layers["nuclei annotations"]
        ann.data[100:161, 100:161] = np.where(truth[100:161, 100:161] > 0, 2, 1)  # fully annotated here
        checked = w.mark_checked()
        checked.add_rectangles(np.array([[100, 100], [160, 160]]))
        w.time_budget.value = 3600
        with qtbot.waitSignal(w.signals.validation_updated, timeout=TIMEOUT_MS):
            assert w.train()
        held = w._job.checked[0]
        assert held[100:161, 100:161].all() and held.sum() == 61 * 61  # napari's rectangles include both corners
        assert (w._job.annotations[0][held] > 0).all()  # the truth goes along; fit holds it out of training
        with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
            w.stop()
        _, score_dice, score_f1 = w.validation[-1]
        assert 0 <= score_dice <= 1 and 0 <= score_f1 <= 1 and w.loss_plot.validation
    finally:
        w.close_trainer()


def test_predict_with_no_strokes_uses_the_bundled_model_and_new_model_can_start_from_scratch(viewer_widget, qtbot):
    viewer, w = viewer_widget
    viewer.open_sample("napari-unet", "nuclei")
    assert w.start_from.value == "auto" and "Predict uses the bundled model for the image" in w.model_info.value
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    assert dice(viewer.layers["nuclei prediction"].data, io.read_image(sample_paths()["mask"])) > 0.85
    assert w.model is not None and "nuclei" in w.model_info.value
    assert len(viewer.layers["nuclei regions to check"].data) >= 1
    doubt = viewer.layers["nuclei prediction"].features["doubt"]  # object-level doubt, shown on hover
    assert len(doubt) == viewer.layers["nuclei prediction"].data.max() and ((doubt >= 0) & (doubt <= 1)).all()
    w.new_model()
    w.start_from.value = ""
    assert "Train starts a new one" in w.model_info.value
    ann = w.new_annotations()
    ann.data[5:10, 5:10], ann.data[200:204, 200:204] = 1, 2
    assert w.train() and w._job.init_model is None  # a new network
    with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
        w.stop()


def test_predict_with_no_strokes_on_a_stained_rgb_image_uses_the_stained_model(viewer_widget, qtbot, monkeypatch):
    """Start from auto, no strokes, an RGB layer of dark nuclei on a light background: Predict takes the
    bundled nuclei-stained model, says so, and its mask is plausible."""
    from tests.engine.training.test_start import stained_like

    notes = []
    monkeypatch.setattr("napari_unet._qt.model_choice.notify", lambda m, error=False: notes.append(m))
    viewer, w = viewer_widget
    rgb, mask = stained_like()
    viewer.add_image(rgb, name="he", rgb=True)
    assert w.start_from.value == "auto"
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    assert w.model.summary["card"]["name"] == "nuclei-stained"
    assert any("the bundled nuclei-stained model (a bright background" in n for n in notes), notes
    assert dice(viewer.layers["he prediction"].data, mask) > 0.7


def test_the_first_train_fine_tunes_the_bundled_model(viewer_widget, qtbot):
    viewer, w = viewer_widget
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    w.start_from.value = "nuclei"
    train_until_first_preview(w, qtbot)
    assert w._job.init_model is not None and w._job.init_model["summary"]["card"]["name"] == "nuclei"
    assert [entry.note for entry in w.workspace.history][:1] == ["bundled nuclei"]


def test_auto_starts_from_the_bundled_model_that_agrees_with_the_strokes(viewer_widget, qtbot, monkeypatch):
    notes = []
    monkeypatch.setattr("napari_unet._qt.train_section.notify", lambda m, error=False: notes.append(m))
    viewer, w = viewer_widget
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    assert w.start_from.value == "auto"
    train_until_first_preview(w, qtbot)
    assert w._job.init_model is None and w._job.start == "auto"  # chosen in the trainer, not the viewer
    assert any(n.startswith("started from nuclei") for n in notes), notes
    assert w.model.summary["card"]["name"] == "nuclei"
