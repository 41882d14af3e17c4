"""A day of work in the widget: stable preview colours, layers that do not hide each other, Undo
corrections, the model history, New model, the Image box following the selection, object counts,
autosaves offered (never restored unasked), and the small things."""

import numpy as np

from napari_unet.engine.disk import autosave
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.trainer.protocol import PreviewLabels
from tests.conftest import make_blobs

TIMEOUT_MS = 120_000


def _model():
    model = SegmentationModel.new(UNetConfig(depth=1, width=4))
    model.net.eval()
    return model


def test_preview_ids_stay_the_same_from_one_preview_to_the_next(viewer_widget):
    viewer, w = viewer_widget
    image, mask = make_blobs((64, 64), n=5, seed=1)
    layer = viewer.add_image(image, name="blobs")
    w._training_layer = layer  # as during training
    try:
        first = mask.astype(np.uint32)
        w._on_preview(PreviewLabels(1, 0.5, first, None, np.ones(int(first.max()), np.int64), None, ((), None)))
        shown = np.array(viewer.layers["blobs prediction"].data, copy=True)
        permuted = np.zeros_like(first)  # the same objects, numbered the other way round
        for i in range(1, int(first.max()) + 1):
            permuted[first == i] = int(first.max()) + 1 - i
        w._on_preview(PreviewLabels(2, 1.0, permuted, None, np.ones(int(first.max()), np.int64), None, ((), None)))
        np.testing.assert_array_equal(viewer.layers["blobs prediction"].data, shown)  # same ids, same colours
    finally:
        w._training_layer = None


def test_strokes_stay_above_the_prediction_and_probabilities_do_not_take_the_selection(viewer_widget):
    viewer, w = viewer_widget
    image, mask = make_blobs((64, 64), n=5, seed=1)
    layer = viewer.add_image(image, name="blobs")
    ann = w.new_annotations()
    w.show_probabilities.value = True
    probabilities = np.stack([1.0 - (mask > 0), (mask > 0)]).astype(np.float32)
    w._show_prediction(layer, mask.astype(np.uint16), probabilities, select=False)
    names = [lay.name for lay in viewer.layers]
    assert names.index("blobs prediction") < names.index("blobs annotations")
    assert names.index("blobs") < names.index("blobs probabilities") < names.index("blobs prediction")
    assert viewer.layers.selection.active.name == "blobs annotations"  # the brush stays where it was
    assert ann.colormap.map([1])[0][3] < 0.5  # background annotations: a translucent wash, not an object


def test_undo_corrections_restores_the_annotations_and_the_model(viewer_widget):
    viewer, w = viewer_widget
    image, mask = make_blobs((64, 64), n=5, seed=1)
    layer = viewer.add_image(image, name="blobs")
    ann = w.new_annotations()
    ann.data[2, 2] = 1
    before = np.array(ann.data, copy=True)
    w.workspace.use(first := _model())
    w._show_prediction(layer, mask.astype(np.uint16), classes=np.ones(int(mask.max()), np.int64))
    edited = np.array(viewer.layers["blobs prediction"].data, copy=True)
    edited[edited == 1] = 0  # a wrong correction: a real object erased
    viewer.layers["blobs prediction"].data = edited
    assert w.use_corrections() > 0 and w.undo_button.enabled
    w.adopt_model(_model(), "trained on it")
    assert w.undo_corrections()
    np.testing.assert_array_equal(viewer.layers["blobs annotations"].data, before)
    assert w.model is first and not w.undo_button.enabled


def test_model_history_goes_back_and_new_model_starts_afresh(viewer_widget):
    _, w = viewer_widget
    w.adopt_model(a := _model(), "round 1")
    w.adopt_model(b := _model(), "round 2")
    assert w.history_combo.value is b and len(w.history_combo.choices) == 2
    w.history_combo.value = a  # one click back
    assert w.model is a and "steps" in w.model_info.value
    w.new_model()
    assert w.model is None and "none" in w.model_info.value


def test_the_image_box_follows_the_selected_image_and_the_status_resets(viewer_widget):
    viewer, w = viewer_widget
    one = viewer.add_image(np.zeros((20, 20)), name="one")
    two = viewer.add_image(np.zeros((30, 30)), name="two")
    w.status.value = "prediction done"
    viewer.layers.selection.active = one
    assert w.image_combo.value.name == "one" and w.status.value == ""
    viewer.layers.selection.active = two
    assert w.image_combo.value.name == "two"


def test_predict_counts_the_objects_in_the_status_line_and_their_features(viewer_widget, qtbot):
    from napari_unet.engine.training import train
    from tests.conftest import scribbles_from

    viewer, w = viewer_widget
    image, mask = make_blobs((64, 64), n=5, seed=1)
    viewer.add_image(image, name="blobs")
    config = train.TrainConfig(steps=60, time_budget=None, batch_size=4, patch_size=32)
    w.workspace.use(train.train([image], [scribbles_from(mask, every=4)], config, unet_config=UNetConfig(depth=2, width=8)))
    with qtbot.waitSignal(w.signals.prediction_finished, timeout=TIMEOUT_MS):
        w.predict()
    count = int(np.max(viewer.layers["blobs prediction"].data))
    assert count > 0 and w.status.value.startswith(f"{count} object")
    features = viewer.layers["blobs prediction"].features
    assert len(features) == count and "area" in features


def test_an_autosave_is_offered_not_restored_unasked(viewer_widget, tmp_path):
    viewer, w = viewer_widget
    image = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40)
    layer = viewer.add_image(image, name="cells")
    identity = w.autosave_identity(layer)
    saved = np.zeros((30, 40), np.uint8)
    saved[3, 3] = 2
    autosave.save(autosave.folder_for(identity), identity, saved, _model())
    viewer.layers.clear()
    viewer.add_image(image.copy(), name="cells")
    viewer.add_labels(np.zeros((30, 40), np.uint8), name="cells annotations")  # as a sample brings its own
    offered = w.offer_autosave(viewer.layers["cells"])
    assert offered and not w.restore_button.native.isHidden() and w.model is None  # offered: nothing came back yet
    assert sum(lay.name.startswith("cells annotations") for lay in viewer.layers) == 1
    assert w.restore_offered()
    assert viewer.layers["cells annotations"].data[3, 3] == 2 and w.model is not None  # into the same layer
    assert sum(lay.name.startswith("cells annotations") for lay in viewer.layers) == 1
    assert w.undo_corrections()  # and the restore can be undone
    assert viewer.layers["cells annotations"].data[3, 3] == 0


def test_save_model_wants_a_pt_file(viewer_widget, tmp_path):
    _, w = viewer_widget
    w.workspace.use(_model())
    assert w.save_model(tmp_path / "model.tif") is None and not (tmp_path / "model.tif").exists()
    assert w.save_model(tmp_path / "model.pt") == tmp_path / "model.pt"
