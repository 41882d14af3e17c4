"""Models that travel: bioimage.io packages (validated and tested by bioimageio.core), TorchScript and
ONNX against torch, the round trip back into napari-unet, and one line for each mistake."""

import zipfile

import numpy as np
import pytest
import torch

from napari_unet import cli
from napari_unet.engine.disk import export
from napari_unet.engine.model import modelfile
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.prediction import predict
from napari_unet.errors import UserInputError


def _model(channels=1, classes=1, axis="none"):
    torch.manual_seed(0)
    model = SegmentationModel.new(UNetConfig(in_channels=channels, n_classes=classes, depth=2, width=4,
                                             channel_axis=axis, class_names=[f"c{i}" for i in range(classes)],
                                             diameter=21.5, invert_bright_background=channels == 1))
    model.summary = {"total_steps": 5, "rounds": [{"steps": 5, "seconds": 1.5, "device": "cpu", "images": 1,
                                                   "annotated_pixels": 300, "final_loss": 0.4}]}
    return model


def _rgb():
    rng = np.random.default_rng(0)
    return (rng.random((90, 100, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("channels,classes,axis", [(1, 1, "none"), (3, 3, "last")])
def test_bioimageio_package_passes_bioimageio_test_and_loads_back(tmp_path, channels, classes, axis):
    from bioimageio.core import test_model

    model = _model(channels, classes, axis)
    sample = np.moveaxis(_rgb(), -1, 0) if channels == 3 else None  # a plane, channels first
    path = export.export(model, tmp_path / "m.zip", "bioimageio", image=sample)
    names = zipfile.ZipFile(path).namelist()
    assert {"rdf.yaml", "weights.pt", "weights_torchscript.pt", "weights.onnx", "cover.png", "README.md",
            "napari_unet_unet.py", export.ATTACHMENT} <= set(names)
    summary = test_model(path)
    assert summary.status == "passed", summary.format()
    back = modelfile.load_model(path)  # napari-unet reads its own packages: Load model, --init, predict
    assert back.config == model.config and back.summary["total_steps"] == 5
    assert back.config.diameter == 21.5  # the diameter travels, and the card tells other tools to apply it
    card = zipfile.ZipFile(path).read("README.md").decode()
    assert "21.5 pixels across" in card and "rescale" in card
    image = _rgb() if channels == 3 else np.random.default_rng(1).random((70, 66)).astype(np.float32)
    np.testing.assert_allclose(predict.predict_probabilities(back, image),
                               predict.predict_probabilities(model, image), atol=1e-6)


def _normalised(model, shape):
    return torch.rand(1, model.config.in_channels, *shape)


@pytest.mark.parametrize("shape", [(40, 40), (64, 48), (77, 101)])
def test_torchscript_and_onnx_give_the_probabilities_of_the_network(tmp_path, shape):
    import onnxruntime

    model = _model(3, 2, "last")
    model.net.eval()  # batch norm with its running statistics, as exported
    export.export(model, tmp_path / "m.pt", "torchscript")
    export.export(model, tmp_path / "m.onnx", "onnx")
    x = _normalised(model, shape)
    with torch.no_grad():
        expected = torch.softmax(model.net(x)[:, :model.config.n_outputs], 1).numpy()
        scripted = torch.jit.load(str(tmp_path / "m.pt"))(x).numpy()
    onnx = onnxruntime.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(scripted, expected, atol=1e-5)
    np.testing.assert_allclose(onnx, expected, atol=1e-5)


def test_another_programs_package_gets_one_line(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("rdf.yaml", "type: model\nformat_version: 0.5.4\n")
        z.writestr("weights.pt", b"x")
    with pytest.raises(UserInputError, match="another program: it holds no napari_unet_model.pt"):
        modelfile.load_model(tmp_path / "other.zip")


def _one_line(capsys, argv, message):
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_export_mistakes_get_one_line(tmp_path, capsys, monkeypatch):
    modelfile.save_model(_model(), tmp_path / "m.pt")
    with pytest.raises(SystemExit):  # argparse: the formats it knows
        cli.main(["export", str(tmp_path / "m.pt"), "--format", "keras", "--out", str(tmp_path / "x")])
    capsys.readouterr()
    _one_line(capsys, ["export", tmp_path / "m.pt", "--format", "onnx", "--out", tmp_path / "m.zip"], "a onnx export is a .onnx")
    _one_line(capsys, ["export", tmp_path / "m.pt", "--format", "onnx", "--out", tmp_path / "no" / "m.onnx"],
              "does not exist")
    (tmp_path / "other.pt").write_bytes(b"not a model")
    _one_line(capsys, ["export", tmp_path / "other.pt", "--format", "onnx", "--out", tmp_path / "o.onnx"],
              "not a readable model file")
    from napari_unet.engine import files

    monkeypatch.setattr(files.tempfile, "mkstemp", lambda *a, **k: (_ for _ in ()).throw(PermissionError(13, "denied")))
    _one_line(capsys, ["export", tmp_path / "m.pt", "--format", "torchscript", "--out", tmp_path / "t.pt"],
              "cannot write in")


def test_predict_writes_one_measured_row_per_object(tmp_path):
    import csv

    from napari_unet.engine.disk import io
    from tests.conftest import make_blobs

    image, _ = make_blobs((64, 64), n=6, radius=6, seed=2)
    io.write_mask(tmp_path / "img.tif", image)
    modelfile.save_model(_model(), tmp_path / "m.pt")
    assert cli.main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "img.tif"), "--out", str(tmp_path / "o.tif"),
                     "--instances", "--min-size", "1", "--measurements", str(tmp_path / "m.csv"),
                     "--pixel-size", "0.5"]) == 0
    mask = io.read_image(tmp_path / "o.tif")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert len(rows) == mask.max()
    for row in rows:
        assert int(row["area"]) == int((mask == int(row["label"])).sum())
        assert float(row["area_um2"]) == pytest.approx(0.25 * int(row["area"]))
