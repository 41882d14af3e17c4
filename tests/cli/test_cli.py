import os
import subprocess
import sys

import numpy as np
import pytest

from napari_unet import cli
from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.training.config import TrainConfig
from tests.conftest import make_blobs, scribbles_from


@pytest.fixture
def files(tmp_path):
    image, mask = make_blobs((64, 80), n=6, radius=6, seed=2)
    img = io.write_mask(tmp_path / "img.tif", image)
    lab = io.write_mask(tmp_path / "lab.tif", scribbles_from(mask, every=5))
    return tmp_path, img, lab, mask


def run(*args):
    return cli.main([str(a) for a in args])


@pytest.mark.heavy_compute
def test_train_then_predict(files, capsys):
    tmp, img, lab, mask = files
    model = tmp / "m.pt"
    assert run("train", img, "--labels", lab, "--out", model, "--steps", 40, "--seed", 1,
               "--depth", 2, "--width", 8, "--patch-size", 48, "--class-names", "nucleus") == 0
    assert modelfile.load_model(model).config.class_names == ["nucleus"]
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
    assert modelfile.load_model(tmp / "b.pt").summary["total_steps"] == 4
    # one's own model keeps its prediction at the continuing weight, or at --prior-weight when given
    assert run("train", img, "--labels", lab, "--out", tmp / "c.pt", "--steps", 1, "--init", tmp / "b.pt",
               "--prior-weight", 0.7) == 0
    rounds = modelfile.load_model(tmp / "c.pt").summary["rounds"]
    assert [r["prior_weight"] for r in rounds] == [0.0, TrainConfig().continue_prior_weight, 0.7]


def test_init_auto_starts_from_the_model_that_agrees_and_trains_at_its_estimate(files, capsys, monkeypatch):
    from napari_unet.engine.prediction import size

    tmp, img, lab, _ = files
    estimates = []
    real = size.estimate_diameter
    monkeypatch.setattr(size, "estimate_diameter", lambda m, chw: estimates.append(m) or real(m, chw))
    assert run("train", img, "--labels", lab, "--out", tmp / "a.pt", "--steps", 1, "--init", "auto") == 0
    err = capsys.readouterr().err
    assert "started from nuclei" in err, err
    assert modelfile.load_model(tmp / "a.pt").summary["card"]["name"] == "nuclei"
    # the start choice measured the image with nuclei; the round took that figure instead of measuring again
    assert [m.summary["card"]["name"] for m in estimates].count("nuclei") == 1


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
    assert modelfile.load_model(tmp / "m.pt").summary["rounds"][-1]["steps"] <= 1


@pytest.fixture
def stack_files(tmp_path, capsys):
    """A 3-plane z-stack with scribbles on planes 0 and 2, and a small model trained on it."""
    planes = [make_blobs((48, 56), n=5, radius=6, seed=s) for s in range(3)]
    stack = np.stack([p[0] for p in planes])
    ann = np.zeros(stack.shape, np.uint8)
    for z in (0, 2):
        ann[z] = scribbles_from(planes[z][1], every=5)
    img = io.write_mask(tmp_path / "stack.tif", stack)
    lab = io.write_mask(tmp_path / "stack_lab.tif", ann)
    model = tmp_path / "m.pt"
    assert run("train", img, "--labels", lab, "--axes", "ZYX", "--out", model, "--steps", 30,
               "--depth", 2, "--width", 8, "--patch-size", 48) == 0
    assert "2 annotated plane(s) of 3" in capsys.readouterr().err
    return tmp_path, img, stack, model


@pytest.mark.heavy_compute
def test_stack_train_and_predict(stack_files, capsys):
    tmp, img, stack, model = stack_files
    assert run("predict", model, img, "--out", tmp / "s.tif", "--instances") == 0
    out = io.read_image(tmp / "s.tif")
    assert out.shape == stack.shape and out.max() >= 2


@pytest.mark.heavy_compute
def test_zarr_in_zarr_out_with_axes(stack_files):
    import zarr
    tmp, _, stack, model = stack_files
    tyx = stack.reshape(3, 1, 48, 56)  # T, Z=1, Y, X: axes that cannot be guessed
    src = zarr.open_array(str(tmp / "in.zarr"), mode="w", shape=tyx.shape, chunks=(1, 1, 24, 24), dtype="u2")
    src[:] = tyx
    assert run("predict", model, tmp / "in.zarr", "--axes", "TZYX", "--out", tmp / "o.zarr") == 0
    assert run("predict", model, img_of(tmp, stack[1]), "--out", tmp / "plane.tif") == 0
    out = zarr.open_array(str(tmp / "o.zarr"), mode="r")
    assert out.shape == tyx.shape and out.chunks[:2] == (1, 1)
    np.testing.assert_array_equal(out[1, 0], io.read_image(tmp / "plane.tif"))
    assert not [p for p in tmp.iterdir() if ".part" in p.name]


def img_of(tmp, array):
    return io.write_mask(tmp / "one_plane.tif", array)


@pytest.mark.heavy_compute
def test_bad_axes_message(stack_files, capsys):
    tmp, img, _, model = stack_files
    assert run("predict", model, img, "--axes", "YX", "--out", tmp / "o.tif") == 2
    assert "name 2 dimensions but the image has 3" in capsys.readouterr().err


@pytest.mark.heavy_compute
def test_predict_on_a_local_dask_cluster(stack_files):
    import distributed
    tmp, img, stack, model = stack_files
    # dask's nanny writes OMP_NUM_THREADS=1 (and the like) into this process's environment for its
    # workers: undone after, or every later test and notebook kernel trains on one thread
    saved = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                      dashboard_address=None, processes=True) as cluster:
            assert run("predict", model, img, "--out", tmp / "c.zarr", "--dask-scheduler",
                       cluster.scheduler_address) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert run("predict", model, img, "--out", tmp / "local.tif") == 0
    import zarr

    on_cluster = zarr.open_array(str(tmp / "c.zarr"), mode="r")[:]
    np.testing.assert_array_equal(on_cluster, io.read_image(tmp / "local.tif"))


@pytest.mark.heavy_compute
def test_unreachable_scheduler_is_one_line(stack_files, capsys, monkeypatch):
    from napari_unet.cli import predict as predict_command

    monkeypatch.setattr(predict_command, "CONNECT_TIMEOUT_S", 4)  # a refused port retries until then
    tmp, img, _, model = stack_files
    assert run("predict", model, img, "--out", tmp / "c.zarr", "--dask-scheduler", "tcp://127.0.0.1:1") == 2
    assert "cannot reach the dask scheduler" in capsys.readouterr().err
