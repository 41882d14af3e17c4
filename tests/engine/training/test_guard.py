"""Rounds that count: corrections alone train a model that continues, and a round that loses what the
model did right on the confirmed annotations is not made current (engine, CLI, workspace)."""

from dataclasses import replace

import numpy as np
import pytest

from napari_unet import cli
from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.training import guard, train
from napari_unet.workspace import Workspace
from tests.conftest import make_blobs

CONFIG = train.TrainConfig(steps=150, time_budget=None, batch_size=4, patch_size=32, seed=0, threads=1)


@pytest.fixture(scope="module")
def trained():
    """A small model that segments the blobs, trained on all of them painted whole."""
    image, mask = make_blobs((64, 64), n=6, seed=0)
    dense = np.where(mask > 0, 0, 1).astype(np.uint8)
    model = train.train([image], [dense], CONFIG, unet_config=UNetConfig(depth=2, width=8), objects=[mask])
    return image, mask, model


def test_object_only_corrections_from_a_bundled_model_train(trained):
    image, mask, _ = trained
    objects = np.where(mask == 1, 1, 0).astype(np.int32)  # one object fixed, nothing else painted
    model = modelfile.load_model("nuclei")
    events = list(train.fit([image], [np.zeros(mask.shape, np.uint8)], replace(CONFIG, steps=2), model=model,
                            objects=[objects]))
    assert isinstance(events[-1], train.Finished) and events[-1].verdict is not None


def _damaged_round(image, mask, model, **config):
    """A round whose corrections call a true object background, trained hard and without the prior term."""
    import copy

    ann = np.where(mask == 0, 1, 0).astype(np.uint8)
    ann[mask == 2] = 1  # a real object painted as background
    objects = np.where((mask > 0) & (mask != 2), mask, 0).astype(np.int32)
    cfg = replace(CONFIG, steps=40, continue_learning_rate=0.2, continue_prior_weight=0.0, **config)
    return list(train.fit([image], [ann], cfg, model=copy.deepcopy(model), objects=[objects]))[-1]


def test_a_round_that_loses_what_the_model_did_right_is_not_made_current(trained):
    image, mask, model = trained
    finished = _damaged_round(image, mask, model)
    verdict = finished.verdict
    assert not verdict.keep_candidate and verdict.candidate < verdict.current, verdict
    assert "kept the earlier model" in verdict.message and f"{verdict.current:.2f}" in verdict.message
    workspace = Workspace()
    workspace.adopt(model, "round 1")
    assert not workspace.finish_round(finished.model, "round 2", verdict)
    assert workspace.model is model and workspace.history[-1].model is finished.model  # in the history
    kept = guard.compare(model, model, [image[None]], [np.where(mask > 0, 2, 1)], [mask.astype(np.int32)])
    assert kept.keep_candidate and kept.current == kept.candidate  # level: the new one is taken


def test_the_cli_prints_both_scores_and_keeps_the_better_model(trained, tmp_path, capsys, monkeypatch):
    image, mask, model = trained
    modelfile.save_model(model, tmp_path / "m.pt")
    io.write_mask(tmp_path / "i.tif", image)
    ann = np.where(mask == 0, 1, 0).astype(np.uint8)
    ann[mask == 2] = 1
    io.write_mask(tmp_path / "l.tif", ann)
    io.write_mask(tmp_path / "o.tif", np.where((mask > 0) & (mask != 2), mask, 0).astype(np.uint16))
    args = ["train", tmp_path / "i.tif", "--labels", tmp_path / "l.tif", "--objects", tmp_path / "o.tif", "--init",
            tmp_path / "m.pt", "--steps", "40", "--prior-weight", "0", "--batch-size", "4", "--patch-size", "32",
            "--threads", "1", "--out", tmp_path / "r.pt", "--keep-better"]
    original = train.TrainConfig.for_model  # as _damaged_round: a round hard enough to break the model
    monkeypatch.setattr(train.TrainConfig, "for_model", lambda self, summary: original(
        replace(self, continue_learning_rate=0.2, continue_prior_weight=0.0), summary))
    assert cli.main([str(a) for a in args]) == 0
    err = capsys.readouterr().err
    assert "F1 on your confirmed objects" in err and "kept the earlier model" in err
    kept = modelfile.load_model(tmp_path / "r.pt")
    assert kept.summary["kept_earlier"]["candidate"] < kept.summary["kept_earlier"]["current"]
    assert kept.summary["total_steps"] == model.summary["total_steps"]  # the earlier model, as it was
