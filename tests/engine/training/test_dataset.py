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


def test_a_model_that_knows_its_size_trains_at_the_scale_predict_sees_the_image():
    """The user's corrections are no survey of sizes: a few thin painted objects (the worst-predicted ones
    often are) must not rescale the round 4x while Predict sees the same image as it is."""
    from napari_unet.engine.disk import io
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import pipeline, size, stacks
    from napari_unet.sample_data import sample_paths

    model = modelfile.load_model("nuclei")
    image = io.read_image(sample_paths()["image"])[None]
    thin = np.zeros(image.shape[1:], np.int32)
    for i in range(5):
        thin[20 + 30 * i:23 + 30 * i, 40:60] = i + 1  # 3 x 20 px: a diameter of 4 px
    assert size.diameter_of_labels(thin) == pytest.approx(4.0)
    predicted = pipeline.resolve_scale(model, image, stacks.layout_of_image(image, "CYX", model), "auto")
    trained = dataset.training_scale(model, [image], [thin], "auto")
    assert trained == pytest.approx(predicted) and trained[0] == 1.0
    new = modelfile.load_model("nuclei")
    new.config.diameter = None
    assert dataset.training_scale(new, [image], [thin], "auto", new=True) == (1.0, 4.0)  # a new network records it
    assert new.config.diameter == 4.0


def test_an_estimate_handed_on_is_rescaled_for_as_an_estimate_without_predicting(monkeypatch):
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import size

    model = modelfile.load_model("nuclei")
    image = np.zeros((1, 64, 64), np.float32)
    monkeypatch.setattr(size, "estimate_diameter", lambda *a: pytest.fail("measured again"))
    half = model.config.diameter / 2
    assert dataset.training_scale(model, [image], [None], size.Estimated(half)) == \
        (pytest.approx(size.scale_for_estimate(model.config.diameter, half)), half)
    assert dataset.training_scale(model, [image], [None], size.Estimated(float("nan"))) == (1.0, None)
    ramp = model.config.diameter / 1.4  # between the two tolerances: part of the way, as Predict does
    assert 1.0 < dataset.training_scale(model, [image], [None], size.Estimated(ramp))[0] < 1.4
    painted = np.zeros((64, 64), np.int32)
    painted[10:20, 10:20] = 1
    new = modelfile.load_model("nuclei")
    new.config.diameter = None
    assert dataset.training_scale(new, [image], [painted], size.Estimated(half), new=True) == (1.0, 10.0)
