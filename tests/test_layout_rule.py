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
