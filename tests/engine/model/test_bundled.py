"""engine.bundled: the models that ship with napari-unet, usable by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unet.engine.disk import io
from napari_unet.engine.model import bundled, modelfile
from napari_unet.engine.prediction import pipeline
from napari_unet.engine.prediction.metrics import dice
from napari_unet.errors import UserInputError
from napari_unet.sample_data import sample_paths


def test_the_nuclei_model_ships_small_and_loads_as_plain_data():
    assert "nuclei" in bundled.bundled_names()
    blob = torch.load(bundled.model_path("nuclei"), map_location="cpu", weights_only=True)  # no code can run
    assert blob["config"]["class_names"] == ["nucleus"]
    from napari_unet.cli.models import card

    assert "BBBC039" in card("nuclei")["data"]


@pytest.mark.parametrize("name", bundled.bundled_names())
def test_every_bundled_model_is_small_plain_data_with_a_card(name):
    path = bundled.model_path(name)
    assert path.stat().st_size < 5e6
    blob = torch.load(path, map_location="cpu", weights_only=True)
    info = blob["summary"]["card"]
    assert info["name"] == name and info["licence"] and info["data"] and info["figures"] and info["command"]


def test_a_wrong_name_lists_the_known_ones():
    known = ", ".join(bundled.bundled_names())
    with pytest.raises(UserInputError, match=f"bundled models: {known} "):
        modelfile.load_model("nucleus")


def test_the_nuclei_model_segments_the_sample_with_no_strokes():
    paths = sample_paths()
    image, truth = io.read_image(paths["image"]), io.read_image(paths["mask"])
    labels = pipeline.predict_image(modelfile.load_model("nuclei"), image, "YX", instances=True).labels
    assert dice(labels, truth) > 0.85
    assert 0.5 * truth.max() < labels.max() < 1.5 * truth.max()


@pytest.mark.heavy_compute
def test_fine_tuning_lets_the_strokes_win_where_they_disagree_with_the_prior():
    """A stroke that calls the largest real nucleus background (the hardest case: it looks like
    every other nucleus): after fine-tuning most of it is background, the other strokes still hold,
    and what nothing was painted on keeps the prior's prediction (the prior loss)."""
    from napari_unet.engine.training import train

    paths = sample_paths()
    image, scribbles, truth = (io.read_image(paths[k]) for k in ("image", "scribbles", "mask"))
    sizes = np.bincount(truth.ravel())
    sizes[0] = 0
    denied = truth == sizes.argmax()  # the largest nucleus (~1500 px), painted over as background
    ann = np.where(denied, 1, scribbles).astype(np.uint8)
    model = modelfile.load_model("nuclei")
    before = pipeline.predict_image(model, image, "YX").labels
    assert (before[denied] > 0).mean() > 0.9  # the prior says nucleus
    tuned = train.train([image], [ann], train.TrainConfig(steps=250, time_budget=None, seed=0), model=model)
    after = pipeline.predict_image(tuned, image, "YX").labels
    others = (ann > 0) & ~denied
    free = ann == 0
    assert (after[denied] > 0).mean() < 0.6  # the stroke is winning over the prior (0.34 here; 0.11 in 600 steps)
    assert ((after[others] > 0) == (ann[others] == 2)).mean() > 0.9  # the other strokes still hold
    assert ((after[free] > 0) == (before[free] > 0)).mean() > 0.97  # 0.984 here; 0.948 without the prior loss
    last = tuned.summary["rounds"][-1]
    assert last["learning_rate"] == train.TrainConfig().fine_tune_learning_rate
    assert last["prior_weight"] == train.TrainConfig().prior_weight > 0

