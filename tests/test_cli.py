import subprocess
import sys

import numpy as np
import pytest

from napari_unet import cli, io
from tests.conftest import make_blobs, scribbles_from


@pytest.fixture
def files(tmp_path):
    image, mask = make_blobs((64, 80), n=6, radius=6, seed=2)
    img = io.write_mask(tmp_path / "img.tif", image)
    lab = io.write_mask(tmp_path / "lab.tif", scribbles_from(mask, every=5))
    return tmp_path, img, lab, mask


def run(*args):
    return cli.main([str(a) for a in args])


def test_train_then_predict(files, capsys):
    tmp, img, lab, mask = files
    model = tmp / "m.pt"
    assert run("train", img, "--labels", lab, "--out", model, "--steps", 40, "--seed", 1,
               "--depth", 2, "--width", 8, "--patch-size", 48, "--class-names", "nucleus") == 0
    assert io.load_model(model).config.class_names == ["nucleus"]
    assert run("predict", model, img, "--out", tmp / "sem.tif") == 0
    sem = io.read_image(tmp / "sem.tif")
    assert sem.shape == mask.shape and sem.dtype == np.uint16 and set(np.unique(sem)) <= {0, 1}
    assert run("predict", model, img, "--out", tmp / "inst.png", "--instances", "--probabilities",
               tmp / "p.npy") == 0
    assert io.read_image(tmp / "inst.png").max() >= 2
    assert np.load(tmp / "p.npy").shape == (2, *mask.shape)
    assert run("predict", model, img, img, "--out-dir", tmp / "outs") == 0
    assert (tmp / "outs" / "img_masks.tif").exists()
    err = capsys.readouterr().err
    assert "step" in err and "saved" in err


def test_fine_tune_with_init(files):
    tmp, img, lab, _ = files
    run("train", img, "--labels", lab, "--out", tmp / "a.pt", "--steps", 2, "--depth", 2, "--width", 4)
    assert run("train", img, "--labels", lab, "--out", tmp / "b.pt", "--steps", 2, "--init", tmp / "a.pt") == 0
    assert io.load_model(tmp / "b.pt").summary["total_steps"] == 4


@pytest.mark.parametrize("args,message", [
    (["train", "{img}", "--labels", "{img}", "{lab}", "--out", "{tmp}/m.pt"], "give one per image"),
    (["train", "{tmp}/missing.tif", "--labels", "{lab}", "--out", "{tmp}/m.pt"], "does not exist"),
    (["train", "{img}", "--labels", "{lab}", "--out", "{tmp}/nodir/m.pt"], "does not exist"),
    (["predict", "{img}", "{img}", "--out", "{tmp}/o.tif"], "not a readable model"),
    (["predict", "{tmp}/none.pt", "{img}", "--out", "{tmp}/o.tif"], "does not exist"),
])
def test_bad_input_gives_one_line_and_exit_2(files, capsys, args, message):
    tmp, img, lab, _ = files
    argv = [a.format(img=img, lab=lab, tmp=tmp) for a in args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-unet: error:") and message in err[0]


def test_empty_annotations_message(files, capsys):
    tmp, img, _, mask = files
    empty = io.write_mask(tmp / "empty.tif", np.zeros(mask.shape, np.uint8))
    assert run("train", img, "--labels", empty, "--out", tmp / "m.pt", "--steps", 1) == 2
    assert "no annotations found" in capsys.readouterr().err


def test_help_explains_label_convention(capsys):
    for sub in ("train", "predict"):
        with pytest.raises(SystemExit):
            cli.main([sub, "--help"])
        out = capsys.readouterr().out
        assert "0 = not annotated" in out and "1 = background" in out and "--instances" in out


def test_real_process_exit_code_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "napari_unet.cli", "predict", str(tmp_path / "x.pt"),
                           str(tmp_path / "y.tif"), "--out", str(tmp_path / "o.tif")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "does not exist" in proc.stderr


def test_tiny_time_budget_still_saves_a_model(files):
    tmp, img, lab, _ = files
    assert run("train", img, "--labels", lab, "--out", tmp / "m.pt", "--time-budget", "0.001",
               "--depth", 2, "--width", 4) == 0
    assert io.load_model(tmp / "m.pt").summary["rounds"][-1]["steps"] <= 1
