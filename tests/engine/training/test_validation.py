"""engine.validation: checked regions are held out of training and scored."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unet.engine.prediction import pipeline
from napari_unet.engine.prediction.metrics import instance_f1
from napari_unet.engine.training import sampling, train, validation
from napari_unet.errors import UserInputError


def _dense(mask):
    return np.where(mask > 0, 2, 1).astype(np.uint8)


@pytest.mark.heavy_compute
def test_checked_pixels_never_reach_a_training_batch(blobs, monkeypatch):
    image, mask, _ = blobs
    ann = _dense(mask)
    checked = np.zeros(mask.shape, bool)
    checked[16:48, 16:48] = True
    seen = []

    class Spy(sampling.DeviceSampler):  # what the training batches are cut from
        def __init__(self, images, annotations, *args, **kwargs):
            seen.extend(np.asarray(a) for a in annotations)
            super().__init__(images, annotations, *args, **kwargs)

    monkeypatch.setattr(sampling, "DeviceSampler", Spy)
    events = list(train.fit([image], [ann], train.TrainConfig(steps=4, time_budget=None), checked=[checked]))
    assert len(seen) == 1 and not seen[0][checked].any() and (seen[0][~checked] > 0).all()
    scores = [e for e in events if isinstance(e, train.Validation)]
    # one at the end; on a slow or loaded CPU also one during the 4 steps (from first_preview seconds on)
    final = scores[-1]
    assert events.index(final) > max(i for i, e in enumerate(events) if isinstance(e, train.Step))
    assert final.pixels == checked.sum() and 0 <= final.dice <= 1 and 0 <= final.f1 <= 1
    assert isinstance(events[-1], train.Finished) and events[-1].model.summary["validation"]["regions"] == 1


@pytest.mark.heavy_compute
def test_the_score_is_the_metric_on_the_held_out_pixels(blobs):
    image, mask, _ = blobs
    ann = _dense(mask)
    checked = np.zeros(mask.shape, bool)
    checked[20:44, 20:44] = True  # with its halo the crop is the whole 64x64 image
    model = train.train([image], [ann], train.TrainConfig(steps=40, time_budget=None, seed=0), checked=[checked])
    _, _, held = validation.hold_out([ann], [checked], [None])
    found = validation.score(model, [image[None]], held)  # channels first, as fit hands them over
    probs = pipeline.predict_image(model, image, "YX", probabilities=True).probabilities
    labels, _ = pipeline.labels_from_probabilities(probs[:, 20:44, 20:44], True)
    pred, truth = labels > 0, mask[20:44, 20:44] > 0
    assert found.dice == pytest.approx(2 * (pred & truth).sum() / (pred.sum() + truth.sum()), abs=1e-6)
    from scipy import ndimage as ndi

    assert found.f1 == pytest.approx(instance_f1(labels, ndi.label(truth)[0]))
    assert model.summary["validation"]["dice"] == pytest.approx(found.dice, abs=1e-3)


def test_objects_touching_a_checked_region_leave_training_and_become_its_truth(blobs):
    _, mask, _ = blobs
    ann = _dense(mask)
    checked = np.zeros(mask.shape, bool)
    checked[:32] = True
    objects = mask.astype(np.int32)
    _, objs, held = validation.hold_out([ann], [checked], [objects])
    crossing = set(np.unique(objects[checked])) - {0}
    assert not set(np.unique(objs[0])) & crossing
    assert held[0].instances.max() > 0 and (held[0].instances[~held[0].mask] == 0).all()


def test_a_checked_region_without_annotations_is_refused(blobs):
    image, mask, _ = blobs
    empty = np.zeros(mask.shape, np.uint8)
    empty[40:, 40:] = _dense(mask)[40:, 40:]
    checked = np.zeros(mask.shape, bool)
    checked[:10, :10] = True
    with pytest.raises(UserInputError, match="checked region holds no annotations"):
        list(train.fit([image], [empty], train.TrainConfig(steps=2, time_budget=None), checked=[checked]))
