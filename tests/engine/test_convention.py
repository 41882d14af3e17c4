import numpy as np
import pytest

from napari_unet.engine import convention
from napari_unet.errors import UserInputError


def test_check_annotations_errors():
    with pytest.raises(UserInputError, match="shape"):
        convention.check_annotations(np.zeros((5, 5), np.uint8), (6, 5))
    with pytest.raises(UserInputError, match="negative"):
        convention.check_annotations(np.full((5, 5), -1), (5, 5))
    with pytest.raises(UserInputError, match="fractional"):
        convention.check_annotations(np.full((5, 5), 1.5), (5, 5))
    ok = convention.check_annotations(np.full((5, 5), 2.0), (5, 5))
    assert ok.dtype == np.int16


def test_prediction_to_annotations():
    sem = np.array([[0, 1, 2]])
    assert convention.prediction_to_annotations(sem, False).tolist() == [[1, 2, 3]]
    inst = np.array([[0, 1, 2, 3]])
    assert convention.prediction_to_annotations(inst, True).tolist() == [[1, 2, 2, 2]]
    assert convention.prediction_to_annotations(inst, True, np.array([1, 2])).tolist() == [[1, 2, 3, 2]]
