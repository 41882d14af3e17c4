"""The fault table: bad inputs and failures, through the engine and the CLI.

Each row names an input and what it must get: a one-line message naming the
problem and the fix (engine: UserInputError; CLI: exit 2, one line on stderr, no
traceback), or graceful behaviour (it works). The widget's rows are in
tests/gui/test_stacks_and_faults.py and tests/gui/test_widget.py.
"""

import errno

import numpy as np
import pytest
import torch

from napari_unet import cli
from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.prediction import predict
from napari_unet.engine.training import train
from napari_unet.errors import UserInputError
from tests.conftest import make_blobs, scribbles_from

SMALL = dict(depth=2, width=8)


def quick(**kw):
    return train.TrainConfig(**{**dict(steps=2, time_budget=None, batch_size=2, patch_size=32, device="cpu"), **kw})


@pytest.fixture(scope="module")
def blobs():
    image, mask = make_blobs((48, 56), n=5, radius=6, seed=4)
    return image, mask, scribbles_from(mask, every=5)


@pytest.fixture(scope="module")
def model(blobs):
    image, _, ann = blobs
    return train.train([image], [ann], quick(), unet_config=UNetConfig(**SMALL))


def _one_line_exit_2(capsys, argv, message):
    assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("napari-unet: error:") and message in err[0], err
    assert "Traceback" not in err[0]


# ---- annotations that cannot train: a message --------------------------------------------------

def _ann(kind, ann):
    if kind == "empty":
        return np.zeros_like(ann)
    if kind == "only background":
        return np.where(ann > 0, 1, 0).astype(np.uint8)
    if kind == "only objects":
        return np.where(ann > 0, 2, 0).astype(np.uint8)
    if kind == "fractional":
        return ann.astype(np.float32) + 0.5
    if kind == "negative":
        return ann.astype(np.int16) - 1
    if kind == "wrong shape":
        return ann[:-3]
    if kind == "too large":
        return np.where(ann == 2, 300, ann.astype(np.uint16)).astype(np.uint16)
    raise ValueError(kind)


ANNOTATION_CASES = [
    ("empty", "no annotations found"),
    ("only background", "only background"),
    ("only objects", "also paint some background"),
    ("fractional", "fractional"),
    ("negative", "negative"),
    ("wrong shape", "annotations have shape"),
    ("too large", "too large"),
]


@pytest.mark.parametrize("kind,message", ANNOTATION_CASES)
def test_bad_annotations_engine(blobs, kind, message):
    image, _, ann = blobs
    with pytest.raises(UserInputError, match=message):
        train.train([image], [_ann(kind, ann)], quick())


@pytest.mark.parametrize("kind,message", ANNOTATION_CASES)
def test_bad_annotations_cli(blobs, tmp_path, capsys, kind, message):
    image, _, ann = blobs
    img = io.write_mask(tmp_path / "img.tif", image)
    bad = tmp_path / "bad.npy"
    np.save(bad, _ann(kind, ann))
    _one_line_exit_2(capsys, ["train", img, "--labels", bad, "--out", tmp_path / "m.pt", "--steps", 1], message)


def test_labels_beyond_the_models_classes(blobs, model, tmp_path, capsys):
    image, _, ann = blobs
    three = np.where(ann == 2, 3, ann).astype(np.uint8)
    with pytest.raises(UserInputError, match="model has 1 object class"):
        train.train([image], [three], quick(), model=model)
    m = modelfile.save_model(model, tmp_path / "m.pt")
    img, lab = io.write_mask(tmp_path / "i.tif", image), io.write_mask(tmp_path / "l.tif", three)
    _one_line_exit_2(capsys, ["train", img, "--labels", lab, "--init", m, "--out", tmp_path / "n.pt"],
                     "model has 1 object class")


# ---- inputs that must simply work ---------------------------------------------------------------

def _border_only(ann):
    out = np.zeros_like(ann)
    out[0, :] = 1
    out[-1, 5:10] = 2
    return out


def _single_pixels(ann):
    out = np.zeros_like(ann)
    out[10, 10], out[30, 30] = 1, 2
    return out


@pytest.mark.parametrize("make", [_border_only, _single_pixels], ids=["border only", "single pixels"])
def test_sparse_or_border_annotations_train(blobs, make):
    image, _, ann = blobs
    m = train.train([image], [make(ann)], quick(), unet_config=UNetConfig(**SMALL))
    assert predict.predict_probabilities(m, image).shape == (2, *image.shape)


def _as(dtype, image):
    if dtype == "bool":
        return image > image.mean()
    if dtype == "int8":
        return (image // 64 - 64).astype(np.int8)
    return image.astype(dtype)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint32", "float64"])
def test_image_dtypes_train_and_predict(blobs, dtype):
    image, _, ann = blobs
    img = _as(dtype, image)
    m = train.train([img], [ann], quick(), unet_config=UNetConfig(**SMALL))
    assert predict.predict_probabilities(m, img).shape == (2, *image.shape)


@pytest.mark.parametrize("kind", ["constant", "nan and inf"])
def test_degenerate_pixels_give_finite_predictions(blobs, model, kind):
    image, _, ann = blobs
    img = np.full(image.shape, 7.0) if kind == "constant" else image.astype(np.float32)
    if kind == "nan and inf":
        img[::7, ::5], img[3, :] = np.nan, np.inf
    train.train([img], [ann], quick(), unet_config=UNetConfig(**SMALL))
    p = predict.predict_probabilities(model, img)
    assert p.shape == (2, *image.shape) and np.isfinite(p).all()


def test_tiny_image_trains_and_predicts_its_shape():
    img = np.random.default_rng(0).random((7, 5)).astype(np.float32)
    ann = np.zeros((7, 5), np.uint8)
    ann[0, 0], ann[6, 4] = 1, 2
    m = train.train([img], [ann], quick(), unet_config=UNetConfig(**SMALL))
    assert predict.predict_probabilities(m, img).shape == (2, 7, 5)


def test_stack_where_2d_expected(blobs, model, tmp_path, capsys):
    image, _, _ = blobs
    stack = np.stack([image, image[::-1]])
    with pytest.raises(UserInputError, match="a stack"):  # the 2D engine call: a message
        predict.predict_probabilities(model, stack)
    m = modelfile.save_model(model, tmp_path / "m.pt")  # the CLI: slice-wise
    s = io.write_mask(tmp_path / "s.tif", stack)
    assert cli.main(["predict", str(m), str(s), "--out", str(tmp_path / "o.tif")]) == 0
    assert io.read_image(tmp_path / "o.tif").shape == stack.shape


# ---- channels ------------------------------------------------------------------------------------

def test_rgb_image_meets_a_grayscale_model_as_its_luminance_with_a_notice(blobs, model, tmp_path, capsys):
    image, _, ann = blobs
    rgb = np.stack([image] * 3, -1)
    np.testing.assert_allclose(predict.predict_probabilities(model, rgb), predict.predict_probabilities(model, image),
                               atol=1e-5)
    tuned = train.train([rgb], [ann], quick(steps=1), model=model)  # fine-tuning reads it the same way
    assert tuned.config.in_channels == 1
    m = modelfile.save_model(model, tmp_path / "m.pt")
    capsys.readouterr()
    assert cli.main(["predict", str(m), str(io.write_mask(tmp_path / "rgb.tif", rgb)), "--out",
                     str(tmp_path / "o.tif")]) == 0
    assert "converted to grey" in capsys.readouterr().err
    assert io.read_image(tmp_path / "o.tif").shape == image.shape


def test_grey_and_rgba_images_meet_a_colour_model_as_rgb_with_a_notice(blobs, tmp_path, capsys):
    """A model trained on RGB (the bundled nuclei-stained) reads a grey image as three equal channels and an
    RGBA image as its RGB, in prediction, fine-tuning and the CLI, instead of refusing them."""
    image, _, ann = blobs
    rgb = np.stack([image] * 3, -1)
    colour_model = train.train([rgb], [ann], quick(steps=2), unet_config=train.UNetConfig(depth=1, width=4))
    assert colour_model.config.in_channels == 3
    rgba = np.concatenate([rgb, np.full_like(rgb[..., :1], 255)], -1)
    for other in (image, rgba):
        np.testing.assert_allclose(predict.predict_probabilities(colour_model, other),
                                   predict.predict_probabilities(colour_model, rgb), atol=1e-5)
    tuned = train.train([image], [ann], quick(steps=1), model=colour_model)  # fine-tuned on a grey image
    assert tuned.config.in_channels == 3
    m = modelfile.save_model(colour_model, tmp_path / "m.pt")
    capsys.readouterr()
    assert cli.main(["predict", str(m), str(io.write_mask(tmp_path / "grey.tif", image)), "--out",
                     str(tmp_path / "o.tif")]) == 0
    assert "grey image read as RGB" in capsys.readouterr().err
    assert io.read_image(tmp_path / "o.tif").shape == image.shape


# ---- model files ---------------------------------------------------------------------------------

class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _model_file(kind, model, tmp_path):
    path = tmp_path / f"{kind.replace(' ', '_')}.pt"
    if kind == "truncated":
        good = modelfile.save_model(model, tmp_path / "good.pt").read_bytes()
        path.write_bytes(good[: len(good) // 2])
    elif kind == "another program's file":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif kind == "an image renamed .pt":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    elif kind == "pickle with code":
        torch.save({"format": modelfile.MODEL_FORMAT, "x": _Payload(str(tmp_path / "pwned"))}, path)
    elif kind == "newer version":
        blob = modelfile.model_to_dict(model)
        blob["format_version"] = modelfile.MODEL_VERSION + 1
        torch.save(blob, path)
    return path


MODEL_CASES = [
    ("truncated", "truncated or corrupted"),
    ("another program's file", "not a napari-unet model"),
    ("an image renamed .pt", "not a readable"),
    ("pickle with code", "not opened"),
    ("newer version", "upgrade napari-unet"),
]


@pytest.mark.parametrize("kind,message", MODEL_CASES)
def test_bad_model_files(blobs, model, tmp_path, capsys, kind, message):
    path = _model_file(kind, model, tmp_path)
    with pytest.raises(UserInputError, match=message):
        modelfile.load_model(path)
    img = io.write_mask(tmp_path / "img.tif", blobs[0])
    _one_line_exit_2(capsys, ["predict", path, img, "--out", tmp_path / "o.tif"], message)
    assert not (tmp_path / "pwned").exists()  # the payload never ran


# ---- faults during work --------------------------------------------------------------------------

class _OOMAfterForward(torch.nn.Module):
    """Wraps a net; its first ``fail`` forward passes raise CUDA out-of-memory (a negative: always)."""

    def __init__(self, net, fail):
        super().__init__()
        self.inner, self.fail, self.seen = net, fail, []

    @property
    def size_multiple(self):
        return self.inner.size_multiple

    @property
    def size_multiples(self):
        return self.inner.size_multiples

    def forward(self, x):
        self.seen.append(x.shape[0])
        if self.fail < 0 or len(self.seen) <= self.fail:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_out_of_memory_in_training_retries_smaller(blobs):
    image, _, ann = blobs
    m = SegmentationModel.new(UNetConfig(**SMALL))
    m.net = _OOMAfterForward(m.net, fail=2)
    events = list(train.fit([image], [ann], quick(steps=3, batch_size=8), model=m))
    notices = [e.message for e in events if isinstance(e, train.Notice)]
    assert len(notices) == 2 and "continuing with 4 patch(es)" in notices[0]
    assert m.net.seen[:3] == [8, 4, 2]
    assert isinstance(events[-1], train.Finished)


def test_out_of_memory_in_training_gives_up_with_a_message(blobs):
    image, _, ann = blobs
    m = SegmentationModel.new(UNetConfig(**SMALL))
    m.net = _OOMAfterForward(m.net, fail=-1)
    with pytest.raises(UserInputError, match="out of memory .* even with one 32x32 patch"):
        train.train([image], [ann], quick(batch_size=2, patch_size=64), model=m)


def test_out_of_memory_in_prediction_retries_tile_by_tile(blobs, model):
    image = blobs[0]
    # the same wrapped (unfused) net, tile by tile: in bf16 both the batch norm folding and the batch
    # size change the last digits, so the reference takes the path the retry takes
    reference = SegmentationModel(model.config, _OOMAfterForward(model.net, fail=0))
    expected = predict.predict_probabilities(reference, image, tile_size=32, overlap=8, batch_size=1)
    wrapped = SegmentationModel(model.config, _OOMAfterForward(model.net, fail=1))
    got = predict.predict_probabilities(wrapped, image, tile_size=32, overlap=8, batch_size=4)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert wrapped.net.seen[0] == 4 and set(wrapped.net.seen[1:]) == {1}
    hopeless = SegmentationModel(model.config, _OOMAfterForward(model.net, fail=-1))
    with pytest.raises(UserInputError, match="smaller tile size"):
        predict.predict_probabilities(hopeless, image)


def test_full_disk_while_writing_masks(blobs, model, tmp_path, capsys, monkeypatch):
    import tifffile

    def full(path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    m = modelfile.save_model(model, tmp_path / "m.pt")
    img = io.write_mask(tmp_path / "img.tif", blobs[0])
    monkeypatch.setattr(tifffile, "imwrite", full)
    _one_line_exit_2(capsys, ["predict", m, img, "--out", tmp_path / "o.tif"], "No space left on device")
    assert not (tmp_path / "o.tif").exists()
    assert not [p for p in tmp_path.iterdir() if ".part" in p.name]  # nothing half-written left


def test_unwritable_output_folder(blobs, model, tmp_path, capsys):
    m = modelfile.save_model(model, tmp_path / "m.pt")
    img = io.write_mask(tmp_path / "img.tif", blobs[0])
    _one_line_exit_2(capsys, ["predict", m, img, "--out", tmp_path / "missing" / "o.tif"], "does not exist")


# ---- painted whole objects (--objects): a message each ---------------------------------------------

@pytest.mark.parametrize("kind,message", [("shape", "shape"), ("negative", "negative"), ("float", "fractional"),
                                          ("over background", "annotated as background")])
def test_bad_object_files(blobs, tmp_path, capsys, kind, message):
    image, mask, ann = blobs
    objects = np.where(mask == 1, 1, 0).astype(np.int32)
    if kind == "shape":
        objects = objects[:-1]
    elif kind == "negative":
        objects = objects - 1
    elif kind == "float":
        objects = objects + 0.5
    else:
        ann = ann.copy()
        ann[mask == 1] = 1
    paths = [io.write_mask(tmp_path / "i.tif", image), io.write_mask(tmp_path / "a.tif", ann)]
    np.save(tmp_path / "o.npy", objects)
    _one_line_exit_2(capsys, ["train", paths[0], "--labels", paths[1], "--objects", tmp_path / "o.npy", "--out",
                              tmp_path / "m.pt", "--steps", 1], message)


@pytest.mark.heavy_compute
def test_objects_of_a_3d_model_train_and_split_volumes():
    from napari_unet.engine.model.unet import learned_split
    from napari_unet.engine.prediction import stacks
    from tests.conftest import make_spheres, volume_scribbles

    volume, mask = make_spheres((12, 48, 48), n=5, radius=7, z_step=2.0)
    objects = np.where(mask == 1, 1, 0).astype(np.int32)
    unet = UNetConfig(depth=2, width=4, spatial_dims=3, voxel_size=(2.0, 1.0, 1.0))
    config = quick(steps=3, batch_size=1, patch_size=32, patch_depth=4)
    model = train.train([volume], [volume_scribbles(mask, [3, 6])], config, unet_config=unet, objects=[objects])
    assert learned_split(model)
    labels = list(stacks.iter_predict_stack(model, volume, "ZYX", instances=True))[-1].labels
    assert labels.shape == volume.shape  # (the learned split runs on volumes; 3 steps teach it little)
