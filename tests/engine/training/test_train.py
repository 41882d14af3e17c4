import numpy as np
import pytest
import torch

from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.prediction.metrics import dice
from napari_unet.engine.prediction.predict import predict_probabilities
from napari_unet.engine.training import rounds, train
from napari_unet.errors import UserInputError

SMALL = UNetConfig(depth=2, width=8)


def quick(**kw):
    base = dict(steps=3, time_budget=None, batch_size=2, patch_size=32, device="cpu")
    base.update(kw)
    return train.TrainConfig(**base)


def test_fit_yields_events_in_order(blobs):
    image, _, ann = blobs
    events = list(train.fit([image], [ann], quick(), unet_config=SMALL))
    assert isinstance(events[0], train.Started)
    steps = [e for e in events if isinstance(e, train.Step)]
    assert [s.step for s in steps] == [1, 2, 3]
    assert all(np.isfinite(s.loss) and s.elapsed > 0 and s.learning_rate > 0 for s in steps)
    assert isinstance(events[-1], train.Finished)
    assert events[-1].summary["total_steps"] == 3
    assert events[0].device.startswith("CPU")


@pytest.mark.heavy_compute
def test_training_learns_blobs(blobs):
    image, mask, ann = blobs
    model = train.train([image], [ann], quick(steps=60, batch_size=4, patch_size=48), unet_config=SMALL)
    pred = predict_probabilities(model, image).argmax(0)
    assert dice(pred, mask) > 0.85


@pytest.mark.heavy_compute
def test_same_seed_same_weights_on_cpu(blobs):
    image, _, ann = blobs
    a = train.train([image], [ann], quick(seed=3, threads=2), unet_config=SMALL)  # (pinned: not the load's)
    b = train.train([image], [ann], quick(seed=3, threads=2), unet_config=SMALL)
    c = train.train([image], [ann], quick(seed=4, threads=2), unet_config=SMALL)
    for (k, va), vb, vc in zip(a.net.state_dict().items(), b.net.state_dict().values(), c.net.state_dict().values()):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.net.state_dict().values(), c.net.state_dict().values()))


def test_stopping_at_any_yield_leaves_a_usable_model(blobs):
    image, _, ann = blobs
    gen = train.fit([image], [ann], quick(steps=1000), unet_config=SMALL)
    model = next(gen).model
    next(gen)
    gen.close()
    assert not model.net.training
    assert model.summary["rounds"][-1]["steps"] == 1
    assert predict_probabilities(model, image).shape == (2, *image.shape)


def test_time_budget_stops_training(blobs):
    image, _, ann = blobs
    events = list(train.fit([image], [ann], quick(steps=None, time_budget=0.5), unet_config=SMALL))
    last_step = [e for e in events if isinstance(e, train.Step)][-1]
    assert 0.5 <= last_step.elapsed < 5


def test_preview_events_carry_probabilities(blobs):
    image, _, ann = blobs
    cfg = quick(steps=None, time_budget=1.0, first_preview=0.0, preview_every=0.2)
    previews = [e for e in train.fit([image], [ann], cfg, unet_config=SMALL, preview_image=image[None])
                if isinstance(e, train.Preview)]
    assert previews and previews[0].probabilities.shape == (2, *image.shape)


def test_fine_tuning_continues_from_model(blobs):
    image, _, ann = blobs
    model = train.train([image], [ann], quick(), unet_config=SMALL)
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    tuned = train.train([image], [ann], quick(), model=model)
    assert tuned is model and model.summary["total_steps"] == 6
    assert any(not torch.equal(before[k], v) for k, v in model.net.state_dict().items())


def test_a_model_remembers_the_size_it_trained_each_image_at(blobs, tmp_path):
    """Predict (and the next round) see an image the model trained on at the scale it trained it at,
    also after the model file is saved and loaded."""
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import pipeline, size, stacks

    image, _, ann = blobs
    model = train.train([image], [ann], quick(), unet_config=SMALL)
    assert np.isnan(size.remembered(model, image[None]))  # a new model without painted objects: as it is
    model.config.diameter = 12.0
    train.train([image], [ann], quick(), model=model, diameter=24.0)
    assert model.summary["rounds"][-1]["scale"] == 0.5
    loaded = modelfile.load_model(modelfile.save_model(model, tmp_path / "m.pt"))
    assert size.remembered(loaded, image[None]) == 24.0
    found = stacks.layout_of_image(image, None, loaded)
    assert pipeline.resolve_scale(loaded, image, found, "auto") == (0.5, 24.0)
    assert size.remembered(loaded, image[None, ::-1]) is None  # another image


def test_a_trained_model_continues_at_the_continuing_learning_rate(blobs):
    """A continued run peaks at ``continue_learning_rate`` (default half a new model's rate:
    config.py), at a new model's rate when that is None; a new network always at ``learning_rate``."""
    image, _, ann = blobs
    model = train.train([image], [ann], quick(), unet_config=SMALL)
    train.train([image], [ann], quick(), model=model)
    train.train([image], [ann], quick(continue_learning_rate=3e-3), model=model)
    train.train([image], [ann], quick(continue_learning_rate=None), model=model)
    rates = [r["learning_rate"] for r in model.summary["rounds"]]
    new_rate = train.TrainConfig().learning_rate
    assert rates == [new_rate, train.TrainConfig().continue_learning_rate, 3e-3, new_rate]
    assert train.TrainConfig().continue_learning_rate < new_rate


def test_a_continued_run_keeps_its_prediction_by_the_continuing_prior_weight(blobs, monkeypatch):
    """The term that keeps the starting model's prediction (losses.prior_loss) applies to one's own
    trained model at ``continue_prior_weight``, never to a new network; the rounds record it."""
    from napari_unet.engine.training import losses

    image, _, ann = blobs
    calls = []
    real = losses.prior_loss
    monkeypatch.setattr(losses, "prior_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = train.train([image], [ann], quick(continue_prior_weight=2.0), unet_config=SMALL)
    assert calls == []  # a new network has nothing to keep
    train.train([image], [ann], quick(continue_prior_weight=2.0), model=model)
    assert len(calls) == quick().steps
    train.train([image], [ann], quick(continue_prior_weight=0.0), model=model)
    assert len(calls) == quick().steps
    assert [r["prior_weight"] for r in model.summary["rounds"]] == [0.0, 2.0, 0.0]


def test_fine_tuning_refuses_other_channels_and_classes(blobs):
    image, _, ann = blobs
    rgb_model = SegmentationModel.new(UNetConfig(in_channels=3, channel_axis="last", width=4, depth=2))
    with pytest.raises(UserInputError, match="2 channel"):  # (a grey image it reads as RGB: test_faults)
        train.train([np.stack([image, image], -1)], [ann], quick(), model=rgb_model)
    one_class = train.train([image], [ann], quick(steps=1), unet_config=SMALL)
    ann3 = ann.copy()
    ann3[0, 0] = 3
    with pytest.raises(UserInputError, match="1 object class"):
        train.train([image], [ann3], quick(), model=one_class)


def test_rgb_and_multiclass_training():
    rng = np.random.default_rng(0)
    image = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    ann = np.zeros((40, 48), np.uint8)
    ann[5, 5], ann[20, 20], ann[30, 40] = 1, 2, 3
    model = train.train([image], [ann], quick(), unet_config=SMALL)
    assert model.config.in_channels == 3 and model.config.n_classes == 2
    assert model.config.channel_axis == "last"
    assert predict_probabilities(model, image).shape == (3, 40, 48)


def test_bad_configs_and_inputs_are_refused(blobs):
    image, _, ann = blobs
    with pytest.raises(UserInputError, match="never stop"):
        train.TrainConfig(steps=None, time_budget=None)
    with pytest.raises(UserInputError, match="prior weight must be 0 or more"):
        train.TrainConfig(prior_weight=-1.0)
    with pytest.raises(UserInputError, match="prior patches must be between 0 and 1"):
        train.TrainConfig(prior_patches=1.5)
    with pytest.raises(UserInputError, match="one annotation per image"):
        list(train.fit([image, image], [ann], quick()))
    with pytest.raises(UserInputError, match="no annotations"):
        list(train.fit([image], [np.zeros_like(ann)], quick()))


def test_learning_rate_warms_up_and_decays():
    cfg = train.TrainConfig(steps=100, time_budget=None, warmup_steps=10)
    lrs = [train._learning_rate(s, 0.0, cfg) for s in range(100)]
    assert lrs[0] < lrs[9] == pytest.approx(cfg.learning_rate, rel=0.05)
    assert lrs[-1] < 0.1 * cfg.learning_rate


def test_preview_window_predicts_only_that_part(blobs):
    image, _, ann = blobs
    cfg = quick(steps=None, time_budget=0.6, first_preview=0.0, preview_every=0.2)
    previews = [e for e in train.fit([image], [ann], cfg, unet_config=SMALL, preview_image=image[None],
                                     preview_window=(8, 40, 16, 64)) if isinstance(e, train.Preview)]
    assert previews[0].probabilities.shape == (2, 32, 48) and previews[0].window == (8, 40, 16, 64)


def test_a_round_of_too_few_steps_says_so():
    model = SegmentationModel.new(UNetConfig(depth=1, width=4))
    model.summary = {"rounds": [{"steps": 3, "seconds": 15.0}]}
    assert "only 3 training steps in 15 s" in rounds.round_warning(model)
    assert "busy with other programs" in rounds.round_warning(model)
    model.summary = {"rounds": [{"steps": 300, "seconds": 15.0}]}
    assert rounds.round_warning(model) is None
    model.summary = {"rounds": [{"steps": 30, "seconds": 5.2}]}  # the shortest budget on a quiet fp32 CPU
    assert rounds.round_warning(model) is None
    volume = SegmentationModel.new(UNetConfig(depth=1, width=4, spatial_dims=3))
    volume.summary = {"rounds": [{"steps": 26, "seconds": 17.0}]}  # a quiet 2-core CPU's 3D round
    assert "3D U-Net trains slowly" in rounds.round_warning(volume) and "busy" not in rounds.round_warning(volume)


def test_prior_patches_are_drawn_only_while_the_prior_term_is_on(blobs):
    """``prior_patches``: a continuing round (prior term on) draws that share of its patches anywhere, a new
    model none; a round of patches all away from the strokes trains on the prior term alone, never NaN."""
    import torch

    from napari_unet.engine.training.step import sampler_for

    image, _, ann = blobs
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    for prior_weight, anywhere in ((0.0, 0.0), (0.3, 0.5)):
        config = quick(prior_patches=0.5, prior_weight=prior_weight)
        sampler = sampler_for(config, SMALL, [image[None].astype(np.float32)], [ann], None, rng, gen, torch.device("cpu"))
        assert sampler.anywhere == anywhere
    model = train.train([image], [ann], quick(), unet_config=SMALL)
    events = list(train.fit([image], [ann], quick(steps=6, prior_patches=1.0), model=model))
    losses = [e.loss for e in events if isinstance(e, train.Step)]
    assert len(losses) == 6 and np.all(np.isfinite(losses))
    assert model.summary["rounds"][-1]["prior_weight"] > 0 and model.summary["rounds"][-1]["prior_patches"] == 1.0
