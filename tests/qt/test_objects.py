"""Whole objects in the widget: paint two touching objects, train, the preview splits them; correct
an instance prediction (split a merged object), Use corrections, train again."""

import numpy as np

from tests.engine.training.test_painted import _pairs
from tests.qt.conftest import train_until_first_preview

TIMEOUT_MS = 180_000
STEPS_TIMEOUT_MS = 600_000  # the whole test takes ~22 s on a quiet 2-core CPU; one shared with other jobs took > 180 s


def test_paint_objects_train_split_correct_retrain(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    try:
        image, truth = _pairs()
        viewer.add_image(image, name="pairs")
        ann = w.new_annotations()
        scribbles = np.zeros(truth.shape, np.uint8)
        scribbles[::6, ::6] = np.where(truth[::6, ::6] > 0, 0, 1)  # background dots
        ann.data = scribbles
        objects = w.new_objects()
        assert objects.name == "pairs objects" and objects.data.shape == truth.shape and objects.mode == "paint"
        assert w.annotation_combo.value.name == "pairs annotations"  # objects are not offered as class annotations
        objects.data = np.where(np.isin(truth, [1, 2]), truth, 0).astype(np.uint16)  # one touching pair
        w.time_budget.value = 3600  # stopped below after a step count, whatever the CPU's speed
        # (60 steps split the pair, from scratch or from the bundled model)
        with qtbot.waitSignal(w.signals.preview_updated, timeout=TIMEOUT_MS):
            assert w.train()
        qtbot.waitUntil(lambda: len(w.losses) >= 60 or not w.is_training, timeout=STEPS_TIMEOUT_MS)
        with qtbot.waitSignal(w.signals.training_finished, timeout=TIMEOUT_MS):
            w.stop()
        assert w.model.summary["object_pixels"] > 0
        pred = viewer.layers["pairs prediction"].data
        a, b = pred[15, 12], pred[15, 30]  # the centres of the painted pair's squares
        assert a > 0 and b > 0 and a != b  # two objects where the distance rule makes one

        # a correction: the user splits the third pair by painting a new id into its right half
        edited = np.array(pred, copy=True)
        edited[38:56, 4:22] = 901
        edited[38:56, 22:40] = 902
        viewer.layers["pairs prediction"].data = edited
        n_before = len(np.unique(objects.data)) - 1
        assert w.use_corrections() > 0
        assert len(np.unique(objects.data)) - 1 >= n_before + 2  # both halves are painted objects now
        train_until_first_preview(w, qtbot, TIMEOUT_MS)  # continues from the current model
        assert w.model.summary["total_steps"] > 60
    finally:
        w.close_trainer()
