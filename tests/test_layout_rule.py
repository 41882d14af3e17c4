"""One rule for axes and channels: the same arrays read the same way by ``train.fit``, the CLI and
the widget (its layer access, which the widget's Axes field and Predict use)."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_unet import cli
from napari_unet._qt.layers import layer_axes
from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.training import train
from napari_unet.errors import UserInputError

TINY = train.TrainConfig(steps=1, time_budget=None, batch_size=1, patch_size=16)


def _annotations(shape):
    ann = np.zeros(shape, np.uint8)
    ann[..., 2, 2], ann[..., 10, 10] = 1, 2
    return ann


@pytest.mark.heavy_compute
def test_a_leading_axis_is_planes_everywhere(tmp_path, capsys):
    stack = np.random.default_rng(0).random((5, 24, 24)).astype(np.float32)
    with pytest.raises(UserInputError, match="stack of 5 planes"):  # fit: one plane expected
        train.train([stack], [_annotations((24, 24))], TINY)
    assert layer_axes(SimpleNamespace(data=stack, rgb=False)) == "ZYX"  # the widget
    ann = np.zeros((5, 24, 24), np.uint8)
    ann[1] = _annotations((24, 24))
    np.save(tmp_path / "s.npy", stack)
    np.save(tmp_path / "a.npy", ann)
    assert cli.main(["train", str(tmp_path / "s.npy"), "--labels", str(tmp_path / "a.npy"), "--out",
                     str(tmp_path / "m.pt"), "--steps", "1", "--batch-size", "1", "--patch-size", "16"]) == 0
    assert "1 annotated plane(s) of 5" in capsys.readouterr().err  # the CLI: a Z-stack too
    assert modelfile.load_model(tmp_path / "m.pt").config.in_channels == 1


@pytest.mark.heavy_compute
def test_a_short_trailing_axis_is_channels_everywhere(tmp_path):
    image = np.random.default_rng(0).random((24, 24, 2)).astype(np.float32)
    model = train.train([image], [_annotations((24, 24))], TINY)  # fit
    assert model.config.in_channels == 2 and model.config.channel_axis == "last"
    assert layer_axes(SimpleNamespace(data=image, rgb=False)) == "YXC"  # the widget
    np.save(tmp_path / "i.npy", image)
    np.save(tmp_path / "a.npy", _annotations((24, 24)))
    assert cli.main(["train", str(tmp_path / "i.npy"), "--labels", str(tmp_path / "a.npy"), "--out",
                     str(tmp_path / "m.pt"), "--steps", "1", "--batch-size", "1", "--patch-size", "16"]) == 0
    assert modelfile.load_model(tmp_path / "m.pt").config.in_channels == 2  # the CLI


def test_a_leading_axis_is_channels_when_the_model_has_that_many(tmp_path):
    image = np.random.default_rng(0).random((3, 24, 24)).astype(np.float32)
    unet = train.UNetConfig(depth=1, width=4, channel_axis="first")  # declared, as --axes CYX does
    model = train.train([image], [_annotations((24, 24))], TINY, unet_config=unet)
    assert model.config.in_channels == 3
    assert layer_axes(SimpleNamespace(data=image, rgb=False)) == "ZYX"
    assert layer_axes(SimpleNamespace(data=image, rgb=False), in_channels=3) == "CYX"  # the widget with it
    modelfile.save_model(model, tmp_path / "m.pt")
    np.save(tmp_path / "i.npy", image)
    assert cli.main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "i.npy"), "--out",
                     str(tmp_path / "o.tif")]) == 0
    assert io.read_image(tmp_path / "o.tif").shape == (24, 24)  # the CLI read it as CYX


def _calls_into(modules, run) -> dict[str, int]:
    """How often ``run()`` enters each of ``modules`` (files) from outside it (calls within stay uncounted)."""
    import sys

    files = {m.__file__: m.__name__.rsplit(".", 1)[-1] for m in modules}
    counts = dict.fromkeys(files.values(), 0)

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename in files:
            caller = frame.f_back.f_code.co_filename if frame.f_back else None
            if caller != frame.f_code.co_filename:
                counts[files[frame.f_code.co_filename]] += 1
    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return counts


@pytest.mark.parametrize("instances", [False, True])
def test_predict_file_reads_the_layout_and_converts_the_pixels_once(tmp_path, instances):
    """A model's way through ``cli/predict.py:predict_file`` asks the layout and the pixel conversion at
    most twice each (read the layout, hand over the plane; the range, the normalised block), instead of
    bouncing between them at every step."""
    from types import SimpleNamespace

    from napari_unet.cli.predict import predict_file
    from napari_unet.engine import convert
    from napari_unet.engine import layout as layout_module

    image = np.random.default_rng(0).random((40, 48)).astype(np.float32)
    model = train.train([image], [_annotations((40, 48))], TINY, unet_config=train.UNetConfig(depth=1, width=4))
    io.write_mask(tmp_path / "i.tif", (image * 1000).astype(np.uint16))
    args = SimpleNamespace(tile_size=512, instances=instances, min_size=30, probabilities=None, axes=None,
                           dask_scheduler=None, measurements=None, suggestions=None, suggest=5, pixel_size=None)
    counts = _calls_into([layout_module, convert],
                         lambda: predict_file(model, tmp_path / "i.tif", tmp_path / "o.tif", args))
    assert counts == {"layout": 2, "convert": 2}, counts
