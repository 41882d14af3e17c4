"""The fault table, part 2: a careless or hostile user through the CLI and the engine.

Nothing the user gave is replaced, a trained model is never lost, nothing hangs, no small file
takes all memory, files are read as they say, and every mistake ends with one line and exit 2.
The widget's rows are in tests/qt/test_stacks_and_faults.py.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_unet import cli
from napari_unet.engine import files
from napari_unet.engine.disk import autosave, io
from napari_unet.engine.model import modelfile
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.training import train
from napari_unet.errors import UserInputError
from tests.conftest import make_blobs, scribbles_from

SMALL = dict(depth=2, width=8)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A folder with an image, its annotations and a trained model."""
    folder = tmp_path_factory.mktemp("work")
    image, mask = make_blobs((48, 56), n=5, radius=6, seed=4)
    io.write_mask(folder / "img.tif", image)
    io.write_mask(folder / "ann.tif", scribbles_from(mask, every=5))
    config = train.TrainConfig(steps=2, time_budget=None, batch_size=2, patch_size=32)
    model = train.train([image], [scribbles_from(mask, every=5)], config, unet_config=UNetConfig(**SMALL))
    modelfile.save_model(model, folder / "m.pt")
    return folder


def exit_2(capsys, argv, message):
    """One line on stderr naming the problem, exit 2, no traceback."""
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-unet: error:") and message in err[0], err
    return err[0]


def argparse_exit_2(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        cli.main([str(a) for a in argv])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


# ---- data loss: an output never replaces an input ------------------------------------------------

def test_predict_onto_its_input_is_refused(work, tmp_path, capsys):
    before = (work / "img.tif").read_bytes()
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out", work / "img.tif"], "also an input")
    assert (work / "img.tif").read_bytes() == before
    store = tmp_path / "in.zarr"
    io.write_mask(store, np.ones((20, 20), np.uint16))
    exit_2(capsys, ["predict", work / "m.pt", store, "--out", store], "also an input")


def test_train_onto_its_labels_and_probabilities_onto_the_mask_are_refused(work, tmp_path, capsys):
    exit_2(capsys, ["train", work / "img.tif", "--labels", work / "ann.tif", "--out", work / "ann.tif",
                    "--steps", "1"], "model files end in .pt")
    before = (work / "m.pt").read_bytes()
    exit_2(capsys, ["train", work / "img.tif", "--labels", work / "ann.tif", "--init", work / "m.pt", "--out",
                    work / "m.pt", "--steps", "1"], "also an input")
    assert (work / "m.pt").read_bytes() == before
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out", tmp_path / "p.tif", "--probabilities",
                    tmp_path / "p.tif"], "the same file")


def test_out_dir_keeps_names_unique(work, tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "img.tif").write_bytes((work / "img.tif").read_bytes())
    image = io.read_image(work / "img.tif")
    np.save(tmp_path / "a" / "img.npy", image)
    out = tmp_path / "out"
    assert cli.main(["predict", str(work / "m.pt"), str(tmp_path / "a" / "img.tif"), str(tmp_path / "b" / "img.tif"),
                     "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_img_masks.tif", "b_img_masks.tif"]
    assert cli.main(["predict", str(work / "m.pt"), str(tmp_path / "a" / "img.tif"), str(tmp_path / "a" / "img.npy"),
                     "--out-dir", str(tmp_path / "out2")]) == 0
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["img_npy_masks.tif", "img_tif_masks.tif"]


def test_a_mask_that_would_replace_an_input_mask_is_refused(work, tmp_path, capsys):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "x.tif").write_bytes((work / "img.tif").read_bytes())
    (folder / "x_masks.tif").write_bytes((work / "img.tif").read_bytes())
    before = (folder / "x_masks.tif").read_bytes()
    exit_2(capsys, ["predict", work / "m.pt", folder / "x.tif", folder / "x_masks.tif", "--out-dir", folder],
           "also an input")
    assert (folder / "x_masks.tif").read_bytes() == before


def test_mask_paths_tell_every_collision_apart(tmp_path):
    images = [tmp_path / "p1" / "A01.tif", tmp_path / "p2" / "A01.tif", tmp_path / "p1" / "A01.png",
              tmp_path / "cells.tif"]
    names = [p.name for p in files.mask_paths(images, tmp_path)]
    assert len(set(names)) == 4 and names[3] == "cells_masks.tif"


# ---- a trained model is never lost ----------------------------------------------------------------

# Ctrl-C reaches a foreground program as KeyboardInterrupt; a test run started in the background by a
# non-interactive shell (nohup, CI wrappers) hands its children SIGINT ignored, which Python keeps
# (and so does the CLI, as a background job should): restore the terminal's behaviour for the test
TRAIN_FOR_A_MINUTE = """
import signal
import sys
signal.signal(signal.SIGINT, signal.default_int_handler)
from napari_unet import cli
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_training_saves_the_model_so_far(work, tmp_path, sig):
    out = tmp_path / "m.pt"
    proc = subprocess.Popen([sys.executable, "-c", TRAIN_FOR_A_MINUTE, "train", str(work / "img.tif"), "--labels",
                             str(work / "ann.tif"), "--out", str(out), "--time-budget", "120", "--batch-size", "1",
                             "--patch-size", "32", "--depth", "1", "--width", "4"],
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # wait for training to run
            if line.startswith("step"):
                break
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, rest
    assert "interrupted after" in rest and str(out) in rest
    assert modelfile.load_model(out).summary["total_steps"] > 0


def test_output_folder_is_checked_before_training(work, tmp_path, capsys, monkeypatch):
    def refuse(*a, **k):  # (root ignores folder permissions: the folder refuses new files instead)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    exit_2(capsys, ["train", work / "img.tif", "--labels", work / "ann.tif", "--out", tmp_path / "m.pt",
                    "--steps", "1"], "cannot write in")
    exit_2(capsys, ["train", work / "img.tif", "--labels", work / "ann.tif", "--out", tmp_path / "no" / "m.pt",
                    "--steps", "1"], "does not exist")


def test_a_failed_save_puts_the_model_in_the_autosave_folder(work, tmp_path, capsys, monkeypatch):
    out = tmp_path / "m.pt"
    real_save = torch.save

    def full_disk(obj, path, *a, **k):
        if Path(path).parent == tmp_path:  # the --out folder is full; the autosave folder is not
            raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 2048 vs 1024")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    assert cli.main(["train", str(work / "img.tif"), "--labels", str(work / "ann.tif"), "--out", str(out),
                     "--steps", "2", "--batch-size", "1", "--patch-size", "32", "--depth", "1"]) == 2
    err = capsys.readouterr().err
    assert "disk may be full" in err and "internal error" not in err
    saved = list((autosave.cache_root() / "models").glob("m-*.pt"))
    assert len(saved) == 1 and str(saved[0]) in err and not out.exists()
    assert modelfile.load_model(saved[0]).summary["total_steps"] == 2


# ---- nothing hangs, nothing small takes all memory ------------------------------------------------

@pytest.mark.parametrize("budget", ["nan", "inf", "-5"])
def test_non_finite_time_budgets_are_refused(work, tmp_path, capsys, budget):
    argparse_exit_2(capsys, ["train", work / "img.tif", "--labels", work / "ann.tif", "--out", tmp_path / "m.pt",
                             "--time-budget", budget], "positive, finite")
    with pytest.raises(UserInputError, match="positive"):
        train.TrainConfig(time_budget=float(budget))


def test_a_scheduler_that_never_answers_is_given_up(work, tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")  # (in the testing extra; CI has it)
    from napari_unet.cli import predict as predict_command

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(predict_command, "CONNECT_TIMEOUT_S", 3)
    io.write_mask(tmp_path / "in.zarr", io.read_image(work / "img.tif"))
    start = time.perf_counter()
    try:
        exit_2(capsys, ["predict", work / "m.pt", tmp_path / "in.zarr", "--out", tmp_path / "o.zarr",
                        "--dask-scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}"], "cannot reach")
    finally:
        server.close()
    assert time.perf_counter() - start < 30
    exit_2(capsys, ["predict", work / "m.pt", tmp_path / "in.zarr", "--out", tmp_path / "o.zarr",
                    "--dask-scheduler", "not an address"], "cannot reach")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_as_input_is_refused(work, tmp_path, capsys):
    fifo = tmp_path / "in.tif"
    os.mkfifo(fifo)
    exit_2(capsys, ["predict", work / "m.pt", fifo, "--out", tmp_path / "o.tif"], "not a regular file")
    exit_2(capsys, ["train", fifo, "--labels", work / "ann.tif", "--out", tmp_path / "m.pt"], "not a regular file")


def _hostile_model(work, tmp_path, **config):
    blob = torch.load(work / "m.pt", weights_only=True)
    blob["config"].update(config)
    torch.save(blob, tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


def test_an_oversized_config_is_refused_before_any_network_is_built(work, tmp_path, capsys, monkeypatch):
    from napari_unet.engine.model import unet as model_module

    built = []
    monkeypatch.setattr(model_module.UNet, "__init__", lambda *a, **k: built.append(1) or 1 / 0)
    exit_2(capsys, ["predict", _hostile_model(work, tmp_path, depth=8), work / "img.tif", "--out",
                    tmp_path / "o.tif"], "depth")
    assert not built


def test_a_compressed_archive_is_refused_before_it_expands(work, tmp_path, capsys):
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(work / "m.pt") as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("bomb/data/99", b"\0" * 50_000_000)  # 50 MB of zeros in ~50 KB
    assert bomb.stat().st_size < 1_000_000
    exit_2(capsys, ["predict", bomb, work / "img.tif", "--out", tmp_path / "o.tif"], "compressed")


# ---- silently wrong no more -------------------------------------------------------------------------

def test_ome_zarr_full_resolution_from_its_metadata(tmp_path):
    import zarr

    group = zarr.open_group(str(tmp_path / "ome.zarr"), mode="w")
    group.create_array("z_full", shape=(96, 128), dtype="u2")[:] = 1
    group.create_array("a_half", shape=(48, 64), dtype="u2")[:] = 2
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "y"}, {"name": "x"}],
                                   "datasets": [{"path": "z_full"}, {"path": "a_half"}]}]
    assert io.read_image(tmp_path / "ome.zarr").shape == (96, 128)


@pytest.mark.parametrize("channels", [2, 5])
def test_trailing_channels_meet_a_grayscale_model_with_a_message(work, tmp_path, capsys, channels):
    io_path = tmp_path / "multi.npy"
    np.save(io_path, np.zeros((96, 128, channels), np.uint16))
    exit_2(capsys, ["predict", work / "m.pt", io_path, "--out", tmp_path / "o.tif"], f"{channels} channels")
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("damage,message", [("nan", "NaN"), ("variance", "negative batch-norm"),
                                            ("percentiles", "norm_percentiles"), ("dims", "spatial_dims"),
                                            ("huge", "far beyond")])
def test_damaged_weights_and_configs_are_refused(work, tmp_path, capsys, damage, message):
    blob = torch.load(work / "m.pt", weights_only=True)
    if damage == "huge":  # what random bytes over a float32 can make of it: finite, but no trained weight
        next(v for k, v in blob["state_dict"].items() if k.endswith("weight"))[0] = 3.05e38
    elif damage == "nan":
        next(v for k, v in blob["state_dict"].items() if k.endswith("weight"))[0] = float("nan")
    elif damage == "variance":
        next(v for k, v in blob["state_dict"].items() if k.endswith("running_var"))[0] = -1.0
    elif damage == "percentiles":
        blob["config"]["norm_percentiles"] = [99.8, 1.0]
    else:
        blob["config"]["spatial_dims"] = 4
    torch.save(blob, tmp_path / "bad.pt")
    exit_2(capsys, ["predict", tmp_path / "bad.pt", work / "img.tif", "--out", tmp_path / "o.tif"], message)


def test_bytes_damaged_on_disk_are_refused_by_their_checksums(work, tmp_path, capsys):
    """2000 random bytes in the middle of a valid model file once loaded as a model with one weight at
    3.05e38, predicting 9 objects where the intact file finds 70: the zip's checksums now refuse it."""
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((work / "m.pt").read_bytes())
    with open(damaged, "r+b") as f:
        f.seek(damaged.stat().st_size // 2)
        f.write(np.random.default_rng(0).bytes(2000))
    with pytest.raises(UserInputError, match="damaged: its entry .* does not match its checksum"):
        modelfile.load_model(damaged)
    exit_2(capsys, ["predict", damaged, work / "img.tif", "--out", tmp_path / "o.tif"], "checksum")


def test_torchscript_export_to_a_full_disk_ends_with_a_line_and_leaves_no_file(work, tmp_path, capsys, monkeypatch):
    """torch's own file writer aborted the process (a C++ exception in a destructor) on a full disk; the
    network is now written to memory and then to the file, where a full disk is an OSError."""
    from napari_unet.engine.disk import export

    def full(path, data):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(export, "write_bytes", full)
    exit_2(capsys, ["export", work / "m.pt", "--format", "torchscript", "--out", tmp_path / "m_ts.pt"],
           "No space left on device")
    assert not list(tmp_path.glob("*m_ts*"))


def test_write_mask_refuses_what_its_format_cannot_hold(tmp_path):
    with pytest.raises(UserInputError, match="negative"):
        io.write_mask(tmp_path / "m.tif", np.array([[-1, 2]]))
    big = np.array([[2**32 + 5, 1]], np.int64)
    np.testing.assert_array_equal(io.read_image(io.write_mask(tmp_path / "m.npy", big)), big)  # uint64, kept
    with pytest.raises(UserInputError, match="16-bit PNG"):
        io.write_mask(tmp_path / "m.png", np.array([[70000]]))
    assert not list(tmp_path.glob("m.png*"))


def test_png_is_read_as_the_file_says(tmp_path):
    import png
    from PIL import Image

    rgba = (np.arange(20 * 30 * 4).reshape(20, 30, 4) * 97 % 65535).astype(np.uint16)
    png.from_array(rgba.reshape(20, -1), "RGBA;16").save(str(tmp_path / "rgba16.png"))
    np.testing.assert_array_equal(io.read_image(tmp_path / "rgba16.png"), rgba)
    labels = np.random.default_rng(0).integers(0, 4, (20, 30)).astype(np.uint8)
    im = Image.fromarray(labels, mode="P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
    im.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(io.read_labels(tmp_path / "pal.png"), labels)
    assert io.read_image(tmp_path / "pal.png").shape == (20, 30, 3)  # as an image: its colours


@pytest.mark.heavy_compute
def test_palette_png_annotations_train(work, tmp_path, capsys):
    from PIL import Image

    im = Image.fromarray(io.read_image(work / "ann.tif").astype(np.uint8), mode="P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    im.save(tmp_path / "ann.png")
    assert cli.main(["train", str(work / "img.tif"), "--labels", str(tmp_path / "ann.png"), "--out",
                     str(tmp_path / "m.pt"), "--steps", "1", "--batch-size", "1", "--patch-size", "32"]) == 0


# ---- rough edges --------------------------------------------------------------------------------------

def test_impossible_outputs_are_refused_before_any_work(work, tmp_path, capsys, monkeypatch):
    from napari_unet.engine.prediction import pipeline

    monkeypatch.setattr(pipeline, "iter_predict_image", lambda *a, **k: 1 / 0)  # no prediction may start
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out", tmp_path / "x.jpg"], "cannot write masks")
    np.save(tmp_path / "stack.npy", np.zeros((3, 48, 56), np.uint16))
    exit_2(capsys, ["predict", work / "m.pt", tmp_path / "stack.npy", "--out", tmp_path / "x.png"], "PNG holds 2D")
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out", tmp_path / "x.tif", "--probabilities",
                    tmp_path / "p.png"], "cannot write probabilities")


def test_a_killed_runs_temporaries_are_cleaned_and_a_replaced_store_never_vanishes(tmp_path):
    out = tmp_path / "x.zarr"
    (tmp_path / ".x.zarr.abc123.part.zarr").mkdir()  # left by a killed run
    (tmp_path / ".x.zarr.lock").write_text("999999999")  # its lock: no such process
    io.write_mask(out, np.ones((8, 8), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr"]
    os.replace(out, tmp_path / ".x.zarr.4242.old")  # killed between renaming the old aside and the new in
    io.write_mask(out, np.full((8, 8), 2, np.uint8))
    assert io.read_image(out).max() == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["x.zarr"]


def test_a_second_writer_of_one_store_gets_a_message(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".x.zarr.lock").write_text(str(sleeper.pid))  # a live napari-unet run writes x.zarr
        with pytest.raises(UserInputError, match="another napari-unet run"):
            io.write_mask(tmp_path / "x.zarr", np.ones((4, 4), np.uint8))
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("argv,message", [
    (["--batch-size", "-3"], "at least 1"),
    (["--depth", "50"], "depth must be"),
    (["--3d", "--voxel-size", "-1", "1", "1"], "positive, finite"),
    (["--3d", "--voxel-size", "nan", "1", "1"], "positive, finite"),
])
def test_user_mistakes_in_train_exit_2(work, tmp_path, capsys, argv, message):
    base = ["train", work / "img.tif", "--labels", work / "ann.tif", "--out", tmp_path / "m.pt", "--steps", "1"]
    try:
        exit_2(capsys, base + argv, message)
    except SystemExit as stop:  # argparse's own check: usage and the error, exit 2
        assert stop.code == 2 and message in capsys.readouterr().err


def test_user_mistakes_in_predict_exit_2(work, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out-dir", tmp_path / "file"], "is a file")
    (tmp_path / "folder").mkdir()
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out", tmp_path / "folder"], "is a folder")
    long_name = tmp_path / ("n" * 250 + ".tif")
    exit_2(capsys, ["predict", work / "m.pt", work / "img.tif", "--out", long_name], "too long")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    line = exit_2(capsys, ["predict", work / "m.pt", text, "--out", tmp_path / "o.tif"], "not a PNG file")
    assert "pip install" not in line
    with open(tmp_path / "code.pt", "wb") as f:  # a pickle with code: opened by no one
        import pickle

        class Payload:
            def __reduce__(self):
                return (os.system, ("touch " + str(tmp_path / "ran"),))
        torch.save({"x": Payload()}, f)
    line = exit_2(capsys, ["predict", tmp_path / "code.pt", work / "img.tif", "--out", tmp_path / "o.tif"],
                  "code or objects")
    assert "\x1b" not in line and "can still be loaded" not in line and not (tmp_path / "ran").exists()
    del pickle
