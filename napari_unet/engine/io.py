"""Files: the self-describing model file, and label masks / images on disk.

Model file (``.pt``): a dict of plain data only (tensors, numbers, strings,
lists, dicts), read with ``torch.load(weights_only=True)``, so opening a model
from someone else cannot run code. It holds a format tag and version, the
UNetConfig (channels, classes and their names, channel layout, normalisation),
the weights and the training summary.

Masks: written as TIFF (default), PNG (2D, up to 16-bit), NPY or zarr, always
through a temporary file renamed into place, so a failed write never leaves a
half-written file behind.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserInputError

MODEL_FORMAT = "napari-unet-model"
MODEL_VERSION = 1
MASK_SUFFIXES = (".tif", ".tiff", ".png", ".npy", ".zarr")


# --- model files -----------------------------------------------------------------

def model_to_dict(model) -> dict:
    """The plain-data content of a model file."""
    from .. import __version__

    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_VERSION,
        "napari_unet_version": __version__,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.net.state_dict().items()},
        "summary": model.summary,
    }


def save_model(model, path) -> Path:
    """Write ``model`` to ``path`` atomically; returns the path."""
    import torch

    path = Path(path)
    with _atomic_path(path) as tmp:
        torch.save(model_to_dict(model), tmp)
    return path


def load_model(path, device: str = "cpu"):
    """Read a model file safely (no code runs) and rebuild the SegmentationModel."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"model file {path} does not exist; check the path")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is not ours
        raise UserInputError(
            f"{path} is not a readable model file (not a PyTorch archive): it is truncated or "
            "corrupted, or comes from another program"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UserInputError(
            f"{path} contains code or objects other than plain data and was not opened "
            f"({str(exc).splitlines()[0][:120]}); only load napari-unet model files you trust"
        ) from None
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
    except (KeyError, TypeError, RuntimeError) as exc:
        raise UserInputError(f"{path} is damaged: its weights do not match its config ({type(exc).__name__})") from None
    return model if device == "cpu" else _to(model, device)


def model_from_dict(blob: dict):
    """Rebuild a SegmentationModel (eval mode, on the CPU) from ``model_to_dict`` output."""
    from .model import SegmentationModel, UNetConfig

    model = SegmentationModel.new(UNetConfig(**blob["config"]))
    model.net.load_state_dict(blob["state_dict"])
    model.summary = dict(blob.get("summary") or {})
    model.net.eval()
    return model


def _to(model, device):
    from .device import pick_device

    model.net.to(pick_device(device))
    return model


# --- masks and images ---------------------------------------------------------------

def mask_dtype(labels: np.ndarray, suffix: str) -> np.dtype:
    """Smallest unsigned type that holds the labels (PNG: at most uint16)."""
    top = int(labels.max()) if labels.size else 0
    if top < 0 or (labels.dtype.kind == "f"):
        raise UserInputError("labels must be non-negative integers to be saved as a mask")
    if top <= 255 and suffix != ".tif" and suffix != ".tiff":
        return np.dtype(np.uint8)
    if top <= 65535:
        return np.dtype(np.uint16)
    if suffix == ".png":
        raise UserInputError(f"{top} labels do not fit a 16-bit PNG; save as .tif, .npy or .zarr")
    return np.dtype(np.uint32)


def write_mask(path, labels) -> Path:
    """Write a label image; the format comes from the suffix (.tif default when none)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == "":
        path, suffix = path.with_suffix(".tif"), ".tif"
    if suffix not in MASK_SUFFIXES:
        raise UserInputError(f"cannot write masks as {suffix!r}; use one of {', '.join(MASK_SUFFIXES)}")
    labels = np.asarray(labels)
    if suffix == ".png" and labels.ndim != 2:
        raise UserInputError(f"PNG holds 2D masks only, this one has shape {labels.shape}; use .tif")
    labels = labels.astype(mask_dtype(labels, suffix), copy=False)
    with _atomic_path(path) as tmp:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, labels, compression="zlib")
        elif suffix == ".png":
            import imageio.v3 as iio

            iio.imwrite(tmp, labels, extension=".png")
        elif suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, labels)
        else:
            import zarr

            zarr.save_array(str(tmp), labels)
    return path


def write_probabilities(path, probabilities: np.ndarray) -> Path:
    """Write float32 probabilities (K, H, W) as .tif (default), .npy or .zarr."""
    path = Path(path)
    suffix = path.suffix.lower() or ".tif"
    path = path.with_suffix(suffix)
    if suffix not in (".tif", ".tiff", ".npy", ".zarr"):
        raise UserInputError(f"cannot write probabilities as {suffix!r}; use .tif, .npy or .zarr")
    probs = np.asarray(probabilities, dtype=np.float32)
    with _atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, probs)
        elif suffix == ".zarr":
            import zarr

            zarr.save_array(str(tmp), probs)
        else:
            import tifffile

            tifffile.imwrite(tmp, probs, compression="zlib")
    return path


def read_image(path, lazy: bool = False):
    """Read an image or mask: TIFF, NPY, zarr, or anything imageio reads (PNG, JPEG, ...).

    lazy: return zarr stores as zarr arrays (read only where sliced, for images
    larger than memory) instead of numpy arrays.
    """
    path = Path(path)
    if not path.exists():
        raise UserInputError(f"{path} does not exist; check the path")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".zarr":
            import zarr

            store = zarr.open(str(path), mode="r")
            if not hasattr(store, "shape"):
                arrays = sorted(store.arrays())  # a group, e.g. OME-Zarr: first level = full resolution
                if not arrays:
                    raise UserInputError(f"{path} holds no array")
                store = arrays[0][1]
            return store if lazy else np.asarray(store)
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except UserInputError:
        raise
    except Exception as exc:  # every reader raises its own types
        raise UserInputError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})"[:300]) from None


# --- atomic writes ---------------------------------------------------------------------

@contextlib.contextmanager
def open_label_store(path, shape, dtype, chunk: int = 1024):
    """A new zarr array at ``path`` for labels of ``shape``, filled by the caller.

    Written under a temporary name and renamed onto ``path`` only when the block
    exits without error, so a failed prediction never leaves a half-written store.
    Chunks: one plane deep, ``chunk`` pixels square.
    """
    import zarr

    chunks = (1,) * (len(shape) - 2) + tuple(min(chunk, n) for n in shape[-2:])
    with _atomic_path(Path(path)) as tmp:
        yield zarr.open_array(str(tmp), mode="w", shape=shape, chunks=chunks, dtype=dtype)


def atomic_path(path):
    """Context manager: a temporary path beside ``path``, renamed onto it on success."""
    return _atomic_path(Path(path))


class _atomic_path:
    """Context manager giving a temporary path beside ``path``; renamed onto it on success."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        parent = self.path.parent
        if not parent.exists():
            raise UserInputError(f"folder {parent} does not exist; create it or choose another place")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part" + self.path.suffix, dir=parent)
        except OSError as exc:
            raise UserInputError(f"cannot write in {parent} ({exc.strerror}); choose another place") from None
        os.close(fd)
        os.unlink(name)  # writers (zarr) want to create it themselves
        self.tmp = Path(name)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            if self.path.is_dir() and self.tmp.is_dir():
                shutil.rmtree(self.path)
            os.replace(self.tmp, self.path)
            return False
        if self.tmp.is_dir():
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif self.tmp.exists():
            self.tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, UserInputError):
            raise UserInputError(f"could not write {self.path} ({exc.strerror or exc}); nothing was written") from None
        return False
