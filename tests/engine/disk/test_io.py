import numpy as np
import pytest
import torch

from napari_unet.engine.disk import io
from napari_unet.engine.model import modelfile
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.errors import UserInputError


@pytest.fixture
def model():
    m = SegmentationModel.new(UNetConfig(in_channels=3, n_classes=2, width=4, depth=2,
                                         class_names=["nucleus", "debris"], channel_axis="last"))
    m.summary = {"rounds": [{"steps": 5}], "total_steps": 5}
    return m


def test_model_round_trip(model, tmp_path):
    path = modelfile.save_model(model, tmp_path / "m.pt")
    loaded = modelfile.load_model(path)
    assert loaded.config == model.config
    assert loaded.summary == model.summary
    for a, b in zip(model.net.state_dict().values(), loaded.net.state_dict().values()):
        assert torch.equal(a, b)
    blob = torch.load(path, weights_only=True)
    assert blob["format"] == modelfile.MODEL_FORMAT and blob["format_version"] == modelfile.MODEL_VERSION


class Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_pickle_payload_does_not_run(tmp_path):
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": modelfile.MODEL_FORMAT, "x": Payload(str(target))}, path)
    with pytest.raises(UserInputError, match="not opened"):
        modelfile.load_model(path)
    assert not target.exists()
    # and the payload is real: unrestricted unpickling would have run it
    torch.load(path, weights_only=False)
    assert target.exists()


@pytest.mark.parametrize("content,match", [
    (b"", "not a readable"),
    (b"GIF89a not a model", "not a readable"),
])
def test_garbage_files_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(UserInputError, match=match):
        modelfile.load_model(path)


def test_truncated_model_is_refused(model, tmp_path):
    path = modelfile.save_model(model, tmp_path / "m.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="truncated or corrupted"):
        modelfile.load_model(path)


def test_other_programs_file_and_newer_version(model, tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(UserInputError, match="not a napari-unet model"):
        modelfile.load_model(other)
    newer = tmp_path / "newer.pt"
    blob = modelfile.model_to_dict(model)
    blob["format_version"] = modelfile.MODEL_VERSION + 1
    torch.save(blob, newer)
    with pytest.raises(UserInputError, match="upgrade napari-unet"):
        modelfile.load_model(newer)


def test_missing_model_file(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        modelfile.load_model(tmp_path / "nope.pt")


@pytest.mark.parametrize("suffix", [".tif", ".png", ".npy", ".zarr"])
@pytest.mark.parametrize("top", [3, 300])
def test_mask_round_trip(tmp_path, suffix, top):
    labels = np.zeros((20, 30), np.uint32)
    labels[2:5, 3:9] = top
    labels[10:12, 20:25] = 1
    path = io.write_mask(tmp_path / f"mask{suffix}", labels)
    back = io.read_image(path)
    assert back.shape == labels.shape
    assert np.array_equal(back, labels)
    if suffix == ".tif":
        assert back.dtype == np.uint16


def test_png_refuses_stacks_and_too_many_labels(tmp_path):
    with pytest.raises(UserInputError, match="2D"):
        io.write_mask(tmp_path / "m.png", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(UserInputError, match="16-bit PNG"):
        io.write_mask(tmp_path / "m.png", np.full((4, 4), 70000, np.uint32))
    assert not list(tmp_path.iterdir())


def test_unknown_suffix_and_missing_folder(tmp_path):
    with pytest.raises(UserInputError, match="cannot write masks"):
        io.write_mask(tmp_path / "m.jpg", np.zeros((4, 4), np.uint8))
    with pytest.raises(UserInputError, match="does not exist"):
        io.write_mask(tmp_path / "no" / "m.tif", np.zeros((4, 4), np.uint8))


def test_unwritable_folder(tmp_path, monkeypatch):
    # permissions are not enforced for root (CI), so make the folder refuse new files
    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    from napari_unet.engine import files

    monkeypatch.setattr(files.tempfile, "mkstemp", refuse)
    with pytest.raises(UserInputError, match="cannot write in .*Permission denied"):
        io.write_mask(tmp_path / "m.tif", np.zeros((4, 4), np.uint8))


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    import tifffile

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(UserInputError, match="No space left"):
        io.write_mask(tmp_path / "m.tif", np.zeros((4, 4), np.uint8))
    assert not list(tmp_path.iterdir())


def test_existing_file_survives_a_failed_overwrite(tmp_path, monkeypatch):
    import tifffile

    path = io.write_mask(tmp_path / "m.tif", np.ones((4, 4), np.uint8))
    monkeypatch.setattr(tifffile, "imwrite", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(UserInputError):
        io.write_mask(path, np.zeros((4, 4), np.uint8))
    assert io.read_image(path).max() == 1


def test_read_image_errors(tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        io.read_image(tmp_path / "x.tif")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"nope")
    with pytest.raises(UserInputError, match="cannot read"):
        io.read_image(bad)
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(UserInputError, match="cannot read"):
        io.read_image(tmp_path / "obj.npy")
