import numpy as np
import pytest

from napari_unet.engine.prediction.metrics import dice, instance_f1


def test_dice():
    a = np.array([[1, 1, 0, 0]])
    assert dice(a, a) == 1.0
    assert dice(a, 1 - a) == 0.0
    assert dice(np.array([[1, 0]]), np.array([[1, 1]])) == pytest.approx(2 / 3)
    assert dice(np.zeros(3), np.zeros(3)) == 1.0


def test_instance_f1_counts_matches_above_iou():
    truth = np.array([[1, 1, 0, 2, 2, 0, 3, 3]])
    pred = np.array([[5, 5, 0, 7, 0, 0, 0, 0]])  # one exact, one IoU 0.5 (not > 0.5), one missed
    assert instance_f1(pred, truth) == pytest.approx(2 * 1 / (2 + 3))
    assert instance_f1(truth, truth) == 1.0
    assert instance_f1(np.zeros(4), np.zeros(4)) == 1.0
