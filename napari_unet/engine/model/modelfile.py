"""The model file (``.pt``): one self-describing file, safe to open from anyone.

A dict of plain data only (tensors, numbers, strings, lists, dicts), read with
``torch.load(weights_only=True)``, so opening a model from someone else cannot run code. It
holds a format tag and version, the UNetConfig (channels, classes and their names, channel
layout, normalisation), the weights and the training summary.

Opening a file checks, before anything large is built or read: that it is an uncompressed zip
(what ``torch.save`` writes; so it cannot expand past its own size) whose entries match their
checksums (a file damaged on disk is refused, not loaded with a wrong weight), that its config is within
within ``config.LIMITS`` and matches the weights' shapes (computed on the ``meta`` device, which allocates
nothing), and that the weights are finite and batch-norm variances non-negative. Writing goes
through a temporary file, so a failed save never leaves half a file.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

from ...errors import UserInputError
from ..files import atomic_path

MODEL_FORMAT = "napari-unet-model"
MODEL_VERSION = 1
MAX_MODEL_BYTES = 1 << 30  # the largest network config.LIMITS allows is ~0.5 GB of float32 weights
MAX_WEIGHT = 1e8  # no trained weight or statistic comes near (the bundled models: 1.8e3 at most)
ATTACHMENT = "napari_unet_model.pt"  # the model file inside the bioimage.io packages napari-unet exports


def model_to_dict(model) -> dict:
    """The plain-data content of a model file."""
    from ... import __version__

    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_VERSION,
        "napari_unet_version": __version__,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()},
        "summary": model.summary,
    }


def save_model(model, path) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path. A full disk or an unwritable folder
    raises UserInputError with nothing written."""
    import torch

    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            torch.save(model_to_dict(model), tmp)
        except RuntimeError as exc:  # torch's zip writer reports a full disk as "[enforce fail ...]"
            raise OSError(f"the disk may be full ({str(exc).splitlines()[0][:80]})") from None
    return path


def load_model(path, device: str = "cpu"):
    """Read a model file safely (no code runs, nothing oversized is built) and rebuild the model.

    ``path`` may also name a bundled model (``"nuclei"``; see ``bundled``)."""
    import torch

    from .bundled import model_path

    path = model_path(path)
    if not path.is_file():
        raise UserInputError(f"model file {path} does not exist or is not a regular file; check the path")
    if zipfile.is_zipfile(path) and _is_bioimageio_package(path):
        return _load_from_package(path, device)
    _check_archive(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserInputError(f"{path} contains code or objects other than plain data and was not opened; "
                             "only load napari-unet model files you trust") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UserInputError(
            f"{path} is not a readable model file ({type(exc).__name__}); it may be truncated or corrupted"
        ) from None
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise UserInputError(f"{path} is not a napari-unet model file; train one with napari-unet")
    version = blob.get("format_version")
    if not isinstance(version, int) or version > MODEL_VERSION:
        raise UserInputError(
            f"{path} has model format version {version}, newer than this napari-unet supports "
            f"({MODEL_VERSION}); upgrade napari-unet"
        )
    try:
        model = model_from_dict(blob)
    except UserInputError as exc:
        raise UserInputError(f"{path}: {exc}") from None
    if device == "cpu":
        return model
    from .device import pick_device

    model.net.to(pick_device(device))
    return model


def _is_bioimageio_package(path: Path) -> bool:
    with zipfile.ZipFile(path) as archive:
        return any(name in ("rdf.yaml", "bioimageio.yaml") or name.endswith(".bioimageio.yaml")
                   for name in archive.namelist())


def _load_from_package(path: Path, device: str):
    """The napari-unet model a bioimage.io package of ours carries (``ATTACHMENT``)."""
    import tempfile

    with zipfile.ZipFile(path) as archive:
        if ATTACHMENT not in archive.namelist():
            raise UserInputError(f"{path} is a bioimage.io package from another program: it holds no {ATTACHMENT}, "
                                 "so napari-unet cannot train or split with it; open it in a bioimage.io tool")
        if archive.getinfo(ATTACHMENT).file_size > MAX_MODEL_BYTES:
            raise UserInputError(f"{path}: its {ATTACHMENT} is larger than any napari-unet model; not opened")
        with tempfile.TemporaryDirectory() as tmp:
            inner = Path(tmp) / ATTACHMENT
            inner.write_bytes(archive.read(ATTACHMENT))
            try:
                return load_model(inner, device)
            except UserInputError as exc:
                raise UserInputError(f"{path}: its {ATTACHMENT} {str(exc).split(': ', 1)[-1]}") from None


def _check_archive(path: Path) -> None:
    """torch.save writes an uncompressed zip with a checksum (CRC-32) per entry: refuse anything else, and
    a file whose bytes no longer match their checksums (damaged on disk or in transfer), before reading it."""
    if not zipfile.is_zipfile(path):
        raise UserInputError(f"{path} is not a readable model file (not a PyTorch archive): it is truncated or "
                             "corrupted, or comes from another program")
    with zipfile.ZipFile(path) as archive:
        if any(info.compress_type != zipfile.ZIP_STORED for info in archive.infolist()):
            raise UserInputError(f"{path} holds compressed entries, which torch.save never writes: it was not "
                                 "made by napari-unet and was not opened")
        try:
            bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError):
            bad = "its entries"
    if bad is not None:
        entry = "/".join(Path(bad).parts[1:]) or bad
        raise UserInputError(f"{path} is damaged: its entry {entry} does not match its checksum (the file changed "
                             "after it was written); use another copy of the model")


def model_from_dict(blob: dict):
    """Rebuild a SegmentationModel (eval mode, on the CPU) from ``model_to_dict`` output, after
    ``check_model_dict``."""
    from .unet import SegmentationModel

    config = check_model_dict(blob)
    model = SegmentationModel.new(config)
    model.net.load_state_dict(blob["state_dict"])
    model.summary = dict(blob.get("summary") or {})
    model.net.eval()
    return model


def check_model_dict(blob: dict):
    """The UNetConfig of a model file's content, once its config and weights are found sound.

    Raises UserInputError (one line: what is wrong) for a config out of bounds, weights whose
    names or shapes are not the config's, non-finite weights or negative batch-norm variances.
    """
    import torch

    from .config import UNetConfig
    from .unet import UNet

    raw, weights = blob.get("config"), blob.get("state_dict")
    if not isinstance(raw, dict) or not isinstance(weights, dict):
        raise UserInputError("it is damaged: no config or no weights; use another model file")
    raw = {"split_head": "none", **raw}  # files from before the split output have none
    try:  # UNetConfig refuses values outside config.LIMITS, reversed percentiles, bad voxel sizes
        config = UNetConfig(**raw)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"it is damaged: its config is not valid ({str(exc)[:120]})") from None
    with torch.device("meta"):  # shapes only: nothing is allocated
        expected = {k: tuple(v.shape) for k, v in UNet(config).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if found != expected:
        wrong = sorted(set(found) ^ set(expected)) or [k for k in expected if found[k] != expected[k]]
        raise UserInputError(f"it is damaged: its weights do not match its config (e.g. {wrong[0]})")
    for name, value in weights.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise UserInputError(f"it is damaged: its weights hold NaN or infinite values ({name})")
        if value.is_floating_point() and value.numel() and float(value.abs().max()) > MAX_WEIGHT:
            raise UserInputError(f"it is damaged: a weight of {float(value.abs().max()):.3g} ({name}) is far beyond "
                                 "what training makes")
        if name.endswith("running_var") and bool((value < 0).any()):
            raise UserInputError(f"it is damaged: negative batch-norm variances ({name})")
    return config
