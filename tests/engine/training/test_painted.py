"""Painted whole objects: checks, merging into the class annotations, the split targets they teach,
instance corrections, and a model that learns a split the distance rule cannot make."""

from dataclasses import replace

import numpy as np
import pytest

from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import learned_split
from napari_unet.engine.prediction import predict
from napari_unet.engine.prediction.metrics import instance_f1
from napari_unet.engine.training import painted, train
from napari_unet.errors import UserInputError
from napari_unet.instances import instance_labels


def test_targets_of_a_touching_pair_have_a_valley_where_they_meet():
    objects = np.zeros((20, 30), np.int32)
    objects[5:15, 5:15], objects[5:15, 15:25] = 1, 2  # two squares side by side: one rectangle
    ann = np.zeros_like(objects)
    ann[0, :] = 1  # background stroke
    t = painted.split_targets(objects, ann, "distance")
    assert t[10, 10] == pytest.approx(1.0, abs=0.25) and t[10, 20] == pytest.approx(1.0, abs=0.25)
    assert t[10, 14] < 0.25 and t[10, 15] < 0.25  # the shared edge is an edge of both
    assert t[10, 3] == 0.0 and t[0, 29] == 0.0  # the ring around them and annotated background
    assert t[18, 10] == painted.UNKNOWN  # beyond the ring, not annotated: nothing taught
    border = painted.split_targets(objects, ann, "border")
    assert border[10, 14] == 1.0 and border[10, 10] == 0.0 and border[0, 0] == painted.UNKNOWN


def test_targets_of_objects_at_the_image_edge_and_of_one_pixel():
    objects = np.zeros((10, 10), np.int32)
    objects[0:4, 0:4], objects[7, 7] = 1, 2
    t = painted.split_targets(objects, np.zeros_like(objects), "distance")
    assert t[7, 7] == 1.0 and 0 < t[0, 0] <= 1  # a 1-pixel object is its own centre; the image edge is an edge
    assert painted.split_targets(np.zeros((4, 4), np.int32), np.zeros((4, 4)), "distance") is None


def test_objects_become_foreground_of_the_class_painted_under_them():
    objects = np.zeros((10, 10), np.int32)
    objects[1:4, 1:4], objects[6:9, 6:9] = 5, 9
    ann = np.zeros((10, 10), np.int16)
    ann[2, 2] = 3  # a dab of the second class inside object 5; object 9 over unannotated ground
    merged = painted.merge_into_annotations(ann, objects)
    assert (merged[1:4, 1:4] == 3).all() and (merged[6:9, 6:9] == 2).all() and merged[0, 0] == 0
    ann[7, 7] = 1
    with pytest.raises(UserInputError, match="annotated as background"):
        painted.merge_into_annotations(ann, objects)


@pytest.mark.parametrize("objects,message", [
    (np.zeros((5, 6)), "shape"), (np.full((5, 5), -1), "negative"), (np.full((5, 5), 1.5), "fractional"),
])
def test_bad_object_images_get_one_clear_message(objects, message):
    with pytest.raises(UserInputError, match=message):
        painted.check_objects(objects, (5, 5))


def test_corrected_objects_are_those_the_user_changed():
    shown = np.zeros((10, 12), np.int32)
    shown[1:4, 1:4], shown[1:4, 6:9], shown[6:9, 1:4], shown[6:9, 6:11] = 1, 2, 3, 4
    edited = shown.copy()
    edited[1:4, 1:4] = 0  # 1 erased
    edited[1:4, 4:6] = 2  # 2 grown (merged over background)
    edited[6:9, 9:11] = 7  # 4 split: a new id painted into part of it
    assert set(painted.corrected_objects(edited, shown)) == {2, 4, 7}  # not 3, untouched; not 1, erased
    objects, n = painted.add_objects(np.zeros((10, 12), np.uint16), edited, [2, 4, 7])
    assert n == 3 and set(np.unique(objects)) == {0, 1, 2, 3} and (objects[6:9, 9:11] != objects[6:9, 6:7]).all()


def _pairs(seed=0):
    """Rectangles of two touching squares (one component to the distance rule) with a dim seam
    where the squares meet: the image shows the split, the mask's shape does not."""
    rng = np.random.default_rng(seed)
    image = rng.normal(100, 8, (96, 96))
    truth = np.zeros((96, 96), np.int32)
    n = 0
    for y in (6, 38, 70):
        for x in (4, 52):
            truth[y:y + 18, x:x + 18], truth[y:y + 18, x + 18:x + 36] = n + 1, n + 2
            image[y:y + 18, x:x + 36] += 400
            image[y:y + 18, x + 17:x + 19] -= 250  # the seam
            n += 2
    return np.clip(image, 0, None).astype(np.float32), truth


@pytest.mark.heavy_compute
def test_a_model_learns_a_split_the_distance_rule_cannot_make():
    image, truth = _pairs()
    ann = np.zeros(truth.shape, np.uint8)
    ann[::6, ::6] = np.where(truth[::6, ::6] > 0, 0, 1)  # background dots
    ann[truth > 0] = 0
    objects = np.where(np.isin(truth, [1, 2, 3, 4]), truth, 0)  # two pairs painted whole
    config = train.TrainConfig(steps=250, time_budget=None, batch_size=4, patch_size=48, seed=0)
    model = train.train([image], [ann], config, unet_config=UNetConfig(depth=2, width=8), objects=[objects])
    assert learned_split(model) and model.summary["object_pixels"] == (objects > 0).sum()
    maps = predict.predict_maps(model, image)
    rule = instance_labels(maps.probabilities).labels
    learned = instance_labels(maps.probabilities, learned=maps.split).labels
    assert instance_f1(rule, truth) < 0.3  # one object per pair
    assert instance_f1(learned, truth) > 0.8  # the unpainted pairs split too



def _touching_discs():
    """(truth, probabilities): pairs of touching discs (the distance rule splits them at their waist)
    and two-class probabilities that find every disc's pixels."""
    from skimage.draw import disk

    truth = np.zeros((64, 96), np.int32)
    for n, (y, x) in enumerate([(16, 14), (16, 30), (46, 50), (46, 66)], start=1):
        truth[disk((y, x), 9, shape=truth.shape)] = n
    fg = (truth > 0).astype(np.float32)
    return truth, np.stack([1 - fg, fg])


def test_a_split_output_taught_too_little_to_seed_gives_way_to_the_distance_rule(monkeypatch):
    from napari_unet.engine.model.unet import SegmentationModel
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.training import split_rule

    truth, probabilities = _touching_discs()
    model = SegmentationModel.new(UNetConfig(depth=2, width=4))
    centres = np.zeros(truth.shape, np.float32)  # a learned distance that never reaches the seed level
    monkeypatch.setattr(pipeline, "preview_maps", lambda *a, **k: predict.PredictionDone(probabilities, centres))
    found = split_rule.choose(model, [truth[None]], [truth])
    assert found.rule == split_rule.DISTANCE and found.learned < 0.6 < found.distance
    learned, _ = painted._distance_to_own_edge(truth, None)  # a learned distance as taught: 1 at each centre
    monkeypatch.setattr(pipeline, "preview_maps", lambda *a, **k: predict.PredictionDone(probabilities, learned))
    # a model that splits with it keeps it; one that does not yet adopts it only when it wins clearly: here
    # the distance rule splits the discs almost as well
    assert split_rule.choose(model, [truth[None]], [truth], splits_now=True) is None
    found = split_rule.choose(model, [truth[None]], [truth])
    assert found.rule == split_rule.DISTANCE and found.learned < found.distance + split_rule.ADOPT_MARGIN
    _, pairs = _pairs()  # touching squares: the distance rule makes one object of each pair
    learned, _ = painted._distance_to_own_edge(pairs, None)
    fg = (pairs > 0).astype(np.float32)
    monkeypatch.setattr(pipeline, "preview_maps",
                        lambda *a, **k: predict.PredictionDone(np.stack([1 - fg, fg]), learned))
    found = split_rule.choose(model, [pairs[None]], [pairs])
    assert found.rule == split_rule.LEARNED and found.learned > 0.9 > 0.6 > found.distance


def test_a_round_of_objects_records_the_split_rule_it_chose():
    from napari_unet.engine.training import split_rule

    image, truth = _pairs()
    ann = np.where(truth > 0, 0, 1).astype(np.uint8)
    objects = np.where(np.isin(truth, [1, 2]), truth, 0).astype(np.int32)
    config = train.TrainConfig(steps=2, time_budget=None, batch_size=2, patch_size=48, seed=0, threads=1)
    model = train.train([image], [ann], config, unet_config=UNetConfig(depth=2, width=4), objects=[objects])
    choice = model.summary["rounds"][-1]["split_rule"]
    assert model.summary["split_rule"] == choice["rule"]
    assert learned_split(model) == (choice["learned"] >= choice["distance"] + split_rule.ADOPT_MARGIN)


def test_previews_split_as_the_model_did_when_the_round_began():
    image, truth = _pairs()
    ann = np.where(truth > 0, 0, 1).astype(np.uint8)
    objects = np.where(np.isin(truth, [1, 2]), truth, 0).astype(np.int32)
    config = train.TrainConfig(steps=4, time_budget=None, batch_size=2, patch_size=48, seed=0, threads=1,
                               first_preview=0.0, preview_every=0.0)
    events = list(train.fit([image], [ann], config, unet_config=UNetConfig(depth=2, width=4), objects=[objects],
                            preview_image=image[None]))
    previews = [e for e in events if isinstance(e, train.Preview)]
    assert previews and all(p.split is None for p in previews)  # a new network: the distance rule until it adopts
    model = [e for e in events if isinstance(e, train.Finished)][-1].model
    model.summary["split_rule"] = "learned"  # as if the round had adopted its learned split
    events = list(train.fit([image], [ann], replace(config, steps=2), model=model, objects=[objects],
                            preview_image=image[None]))
    assert all(e.split is not None for e in events if isinstance(e, train.Preview))


def test_painted_match_is_the_mean_best_iou_of_the_painted_objects():
    from napari_unet.engine.training.split_rule import painted_match

    objects = np.zeros((10, 10), np.int32)
    objects[:5, :5], objects[5:, 5:] = 1, 2
    labels = np.zeros((10, 10), np.int32)
    labels[:5, :5] = 7  # object 1 exactly
    labels[5:, :] = 3  # object 2 inside a region twice its size
    assert painted_match(labels, objects) == pytest.approx((1.0 + 0.5) / 2)
    assert painted_match(np.zeros_like(labels), objects) == 0.0


def test_a_round_that_keeps_the_distance_rule_says_why():
    from napari_unet.engine.model.unet import SegmentationModel
    from napari_unet.engine.training.rounds import split_note

    model = SegmentationModel.new(UNetConfig(depth=2, width=4))
    model.summary = {"object_pixels": 50, "split_rule": "distance",
                     "rounds": [{"split_rule": {"rule": "distance", "learned": 0.31, "distance": 0.36}}]}
    assert not learned_split(model)
    assert "0.31 against 0.36" in split_note(model) and "paint more whole objects" in split_note(model)
    model.summary["rounds"][-1]["split_rule"]["rule"] = "learned"
    assert split_note(model) is None


def test_an_accepted_prediction_leaves_a_band_along_its_outlines_unannotated():
    from skimage.draw import disk

    labels = np.zeros((80, 80), np.int32)
    labels[disk((40, 40), 15)] = 1  # an object of 30 px: a band of 3 px on either side of its outline
    area = np.ones(labels.shape, bool)
    taught = painted.accepted_pixels(labels, area, band=0.1)
    assert taught[40, 40] and taught[0, 0]  # its inside and the background far from it
    assert not taught[40, 40 + 14] and not taught[40, 40 + 16]  # just inside and just outside its outline
    assert taught[40, 40 + 11] and taught[40, 40 + 20]
    assert painted.accepted_pixels(labels, area, band=0).all()
    view = np.zeros(labels.shape, bool)
    view[:20] = True
    assert not (painted.accepted_pixels(labels, view) & ~view).any()  # never beyond what was accepted


def test_accepting_leaves_the_unsure_objects_out_with_their_band():
    labels = np.zeros((60, 60), np.int32)
    labels[10:30, 10:30] = 1
    labels[45:48, 45:48] = 2
    area = np.ones(labels.shape, bool)
    taught = painted.accepted_pixels(labels, area, band=0.1, unsure=[2])
    assert taught[20, 20] and taught[2, 58]  # the trusted object and the background far from the speck
    assert not taught[46, 46] and not taught[44, 46]  # the speck and its outline: the model's to decide
    assert taught[52, 52] == painted.accepted_pixels(labels, area, band=0.1)[52, 52]
