import numpy as np
import pytest

from napari_unet.engine.training import dataset
from napari_unet.errors import UserInputError


@pytest.mark.parametrize("values,match", [([0], "no annotations"), ([0, 1], "only background"),
                                          ([0, 2], "only object")])
def test_training_set_needs_background_and_objects(values, match):
    ann = np.array(values * 4, dtype=np.uint8).reshape(2, -1)
    with pytest.raises(UserInputError, match=match):
        dataset.check_training_set([ann], None)


def test_training_set_counts_classes_and_checks_model_classes():
    ann = np.array([[0, 1, 2, 4]], np.int16)
    assert dataset.check_training_set([ann], None) == 3
    with pytest.raises(UserInputError, match="model has 1 object class"):
        dataset.check_training_set([ann], 1)
