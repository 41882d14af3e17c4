"""The CLI's bundled models (``models``, names for MODEL and --init), --suggestions and --validation."""

import csv

import numpy as np
import pytest

from napari_unet import cli
from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.prediction.metrics import dice
from napari_unet.sample_data import sample_paths
from tests.conftest import make_blobs, scribbles_from


def run(*args):
    return cli.main([str(a) for a in args])


def test_models_lists_the_bundled_cards(capsys):
    from napari_unet.engine.model.bundled import bundled_names

    assert run("models") == 0
    out = capsys.readouterr().out
    starts = [line.split(":")[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert starts == bundled_names() and "nuclei" in starts
    assert "BBBC039" in out and "licence" in out and "Dice" in out
    assert run("models", "nuclei") == 0 and capsys.readouterr().out.startswith("nuclei:")
    assert run("models", "cells-that-do-not-exist") == 2
    assert f"bundled models: {', '.join(bundled_names())} " in capsys.readouterr().err


def test_predict_nuclei_needs_no_training(tmp_path):
    paths = sample_paths()
    assert run("predict", "nuclei", paths["image"], "--out", tmp_path / "m.tif", "--instances") == 0
    assert dice(io.read_image(tmp_path / "m.tif"), io.read_image(paths["mask"])) > 0.85


def test_predict_auto_picks_the_bundled_model_by_the_image(tmp_path, capsys):
    """``predict auto``: nuclei for fluorescence, nuclei-stained for an RGB image of dark nuclei on a light
    background (H&E-like), each said in one line, and both masks plausible."""
    from tests.engine.training.test_start import stained_like

    paths = sample_paths()
    rgb, mask = stained_like()
    stained = io.write_mask(tmp_path / "stained.tif", rgb)
    capsys.readouterr()
    assert run("predict", "auto", paths["image"], stained, "--out-dir", tmp_path / "masks", "--instances") == 0
    err = capsys.readouterr().err
    assert "the bundled nuclei model (no bright background" in err
    assert "stained.tif: the bundled nuclei-stained model (a bright background" in err
    found = io.read_image(next((tmp_path / "masks").glob("stained*")))
    assert found.shape == mask.shape and dice(found, mask) > 0.7


@pytest.mark.heavy_compute
def test_init_nuclei_fine_tunes_the_bundled_model(tmp_path):
    paths = sample_paths()
    assert run("train", paths["image"], "--labels", paths["scribbles"], "--init", "nuclei", "--steps", 3,
               "--out", tmp_path / "tuned.pt") == 0
    tuned = modelfile.load_model(tmp_path / "tuned.pt")
    prior = modelfile.load_model("nuclei").summary.get("total_steps", 0)
    assert tuned.summary["card"]["name"] == "nuclei" and tuned.summary["total_steps"] == prior + 3  # it continued


@pytest.fixture
def blob_files(tmp_path):
    image, mask = make_blobs((96, 160), n=10, radius=7, seed=3)
    img = io.write_mask(tmp_path / "img.tif", image)
    lab = io.write_mask(tmp_path / "lab.tif", scribbles_from(mask, every=5))
    run("train", img, "--labels", lab, "--out", tmp_path / "m.pt", "--steps", 10, "--depth", 2, "--width", 8)
    return tmp_path, img, lab, mask


@pytest.mark.heavy_compute
def test_suggestions_csv(blob_files):
    tmp, img, _, _ = blob_files
    assert run("predict", tmp / "m.pt", img, "--out", tmp / "o.tif", "--instances", "--suggestions", tmp / "s.csv",
               "--suggest", 2) == 0
    rows = list(csv.DictReader(open(tmp / "s.csv")))
    assert list(rows[0]) == ["rank", "y0", "x0", "y1", "x1", "score"] and 1 <= len(rows) <= 2
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    for r in rows:
        assert 0 <= int(r["y0"]) < int(r["y1"]) <= 96 and 0 <= int(r["x0"]) < int(r["x1"]) <= 160
    stack = io.write_mask(tmp / "stack.tif", np.stack([io.read_image(img)] * 3))
    assert run("predict", tmp / "m.pt", stack, "--out", tmp / "so.tif", "--suggestions", tmp / "z.csv") == 0
    rows = list(csv.DictReader(open(tmp / "z.csv")))
    assert list(rows[0])[:2] == ["rank", "z"] and {int(r["z"]) for r in rows} <= {0, 1, 2}
    assert run("predict", tmp / "m.pt", img, "--out", tmp / "o2.tif", "--suggestions", tmp / "s.txt") == 2


@pytest.mark.heavy_compute
def test_validation_masks_are_scored_while_training(blob_files, capsys):
    tmp, img, _, mask = blob_files
    dense = io.write_mask(tmp / "dense.tif", np.where(mask > 0, 2, 1).astype(np.uint8))
    checked = np.zeros(mask.shape, np.uint8)
    checked[20:70, 40:120] = 1
    val = io.write_mask(tmp / "val.tif", checked)
    assert run("train", img, "--labels", dense, "--validation", val, "--steps", 6, "--out", tmp / "v.pt") == 0
    assert "validation at step 6: Dice" in capsys.readouterr().err
    assert modelfile.load_model(tmp / "v.pt").summary["validation"]["pixels"] == checked.sum()
    assert run("train", img, "--labels", dense, "--validation", val, val, "--out", tmp / "w.pt") == 2
