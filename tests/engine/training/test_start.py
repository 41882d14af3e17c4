"""The start of a first round, chosen by the strokes: a bundled model that agrees with them, else a new
network."""

import numpy as np
import pytest

from napari_unet.engine.training import start
from tests.conftest import make_blobs, scribbles_from


def test_strokes_a_bundled_model_agrees_with_start_from_it():
    image, mask = make_blobs((128, 128), n=10, radius=9, seed=3)  # bright nuclei on a dark background
    choice = start.choose_start([image[None]], [scribbles_from(mask, every=5)])
    assert choice.name == "nuclei" and choice.scores["nuclei"] >= start.AGREEMENT and "nuclei" in choice.reason


def test_strokes_no_bundled_model_agrees_with_start_a_new_network():
    image, mask = make_blobs((128, 128), n=10, radius=9, seed=3)
    contrary = scribbles_from(mask, every=5)
    # the same label on blobs and background alike: objects in the left half, background in the right (the
    # blobs merely called background would agree with nuclei-stained, which sees the dim background as nuclei)
    contrary[:, :64][contrary[:, :64] > 0], contrary[:, 64:][contrary[:, 64:] > 0] = 2, 1
    choice = start.choose_start([image[None]], [contrary])
    assert choice.name == "" and all(v < start.AGREEMENT for v in choice.scores.values())
    assert "new network" in choice.reason


@pytest.mark.heavy_compute  # an 896^2 image predicted whole: 42 s in emulated bf16
def test_only_the_painted_corner_is_predicted_and_it_scores_as_the_whole_image(monkeypatch):
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import pipeline, predict

    image, mask = make_blobs((896, 896), n=230, radius=9, seed=4)
    strokes = np.zeros(mask.shape, np.uint8)
    strokes[40:140, 60:180] = scribbles_from(mask, every=5)[40:140, 60:180]  # one corner painted
    model = modelfile.load_model("nuclei")
    whole = pipeline.predict_image(model, image[None], "CYX").labels  # what the score was taken from before
    expected = np.mean([(whole[strokes == v] == v - 1).mean() for v in (1, 2)])
    seen, real = [], predict.iter_predict
    monkeypatch.setattr(predict, "iter_predict", lambda m, chw, **kw: seen.append(np.shape(chw)) or real(m, chw, **kw))
    assert abs(start.stroke_agreement(model, [image[None]], [strokes]) - expected) < 0.01
    assert max(h * w for _, h, w in seen) <= 768 * 768 < image.size  # the size estimate's crop, then the corner
    y0, y1, x0, x1 = start.painted_window(strokes, start.CONTEXT)
    assert (y0, x0) == (0, 0) and (y1, x1) == (135 + start.CONTEXT + 1, 175 + start.CONTEXT + 1)
    assert (1, y1, x1) in seen


def test_the_chosen_model_and_its_estimate_are_handed_on_so_the_round_does_not_measure_again(monkeypatch):
    from napari_unet.engine.prediction import size
    from napari_unet.engine.training import dataset

    image, mask = make_blobs((128, 128), n=10, radius=9, seed=3)
    choice = start.choose_start([image[None]], [scribbles_from(mask, every=5)])
    assert choice.model is not None and choice.model.config.diameter is not None
    assert isinstance(choice.diameter, size.Estimated)
    measured = dataset.training_scale(choice.model, [image[None]], [None], "auto")
    calls = []
    monkeypatch.setattr(size, "estimate_diameter", lambda *a: calls.append(a) or float("nan"))
    assert dataset.training_scale(choice.model, [image[None]], [None], choice.diameter) == measured
    assert not calls


def test_a_candidate_in_full_agreement_ends_the_search(monkeypatch):
    tried = []
    monkeypatch.setattr(start, "_agreement", lambda model, *a: tried.append(model) or (1.0, None))
    image, mask = make_blobs((64, 64), n=3, radius=9, seed=3)
    choice = start.choose_start([image[None]], [scribbles_from(mask, every=5)], candidates=["cells", "nuclei"])
    assert choice.name == "cells" and list(choice.scores) == ["cells"] and len(tried) == 1
    from napari_unet.engine.model.bundled import DEFAULT_MODEL

    choice = start.choose_start([image[None]], [scribbles_from(mask, every=5)])  # the default model first
    assert choice.name == DEFAULT_MODEL and list(choice.scores) == [DEFAULT_MODEL] and len(tried) == 2


def stained_like(seed=3):
    """An RGB image of dark purple nuclei on a light pink background (H&E-like), and its instance mask."""
    image, mask = make_blobs((128, 128), n=10, radius=7, seed=seed)
    dark = (image.astype(np.float32) - image.min()) / np.ptp(image)  # 1 on the nuclei
    rgb = np.stack([235 - 150 * dark, 200 - 170 * dark, 225 - 60 * dark], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8), mask


def test_with_no_strokes_an_image_with_a_bright_background_starts_from_the_stained_model():
    rgb, _ = stained_like()
    name, why = start.start_for_image(np.moveaxis(rgb, -1, 0))
    assert name == start.STAINED_MODEL and "bright background" in why
    fluorescence, _ = make_blobs((128, 128), n=10, radius=7, seed=3)
    assert start.start_for_image(fluorescence[None])[0] == "nuclei"
