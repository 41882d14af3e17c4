"""Autosave: the annotations and the latest model of an image, kept after every training round.

Where: next to the image file, in ``<image stem>.napari-unet/`` (so moving the data
folder keeps them together), or, for images that exist only in memory or sit in a
folder we cannot write, in the user's cache:
``$NAPARI_UNET_AUTOSAVE`` or ``$XDG_CACHE_HOME/napari-unet/autosave`` (default
``~/.cache/napari-unet/autosave``), one folder per image name.

What: ``annotations.tif`` (uint8/uint16, the image's shape without channels) and
``model.pt`` (a normal model file). Both are written atomically (temporary file,
then rename), so a crash while saving keeps the previous version.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

ANNOTATIONS = "annotations.tif"
MODEL = "model.pt"


def cache_root() -> Path:
    if os.environ.get("NAPARI_UNET_AUTOSAVE"):
        return Path(os.environ["NAPARI_UNET_AUTOSAVE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-unet" / "autosave"


def folder_for(image_name: str, image_path=None) -> Path:
    """The autosave folder of an image: beside its file when writable, else in the cache."""
    if image_path:
        path = Path(image_path)
        beside = path.parent / f"{path.stem}.napari-unet"
        if beside.is_dir() or (path.parent.is_dir() and os.access(path.parent, os.W_OK)):
            return beside
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", image_name).strip("._") or "image"
    return cache_root() / safe


def save(folder: Path, annotations=None, model=None) -> list[Path]:
    """Write whichever of annotations / model is given; returns the files written.

    Errors (full disk, no permission) raise UserInputError with nothing half-written.
    """
    from . import io

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if annotations is not None:
        written.append(io.write_mask(folder / ANNOTATIONS, np.asarray(annotations)))
    if model is not None:
        written.append(io.save_model(model, folder / MODEL))
    return written


def load_annotations(folder: Path, shape) -> np.ndarray | None:
    """The autosaved annotations if they exist and have ``shape``, else None."""
    from . import io

    path = folder / ANNOTATIONS
    if not path.exists():
        return None
    try:
        ann = io.read_image(path)
    except Exception:  # noqa: BLE001 - a damaged autosave is ignored, never fatal
        return None
    return ann if tuple(ann.shape) == tuple(shape) else None


def model_path(folder: Path) -> Path | None:
    path = folder / MODEL
    return path if path.exists() else None
