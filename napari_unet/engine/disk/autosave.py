"""Autosave: the annotations and the latest model of an image, kept after every training round.

Keyed by the image's identity (``identity_of``): for an image file its resolved path, for an
image that exists only in memory its name, shape, type and a hash of its pixels. Two images
never share a folder, and a folder gives back only what was saved for the same identity
(``identity.json`` in it says whose it is), never another image's strokes of the same shape.

Where: beside the image file, in ``<file name>.napari-unet/`` (``cells.tif.napari-unet``, so
``cells.png`` beside it has its own), or, for images in memory or in a folder we cannot write, in
the user's cache: ``$NAPARI_UNET_AUTOSAVE`` or ``$XDG_CACHE_HOME/napari-unet/autosave`` (default
``~/.cache/napari-unet/autosave``), in ``<readable name>-<hash of the identity>/`` (Unicode names
kept: ``細胞-3f2a…``).

What: ``annotations.tif`` (uint8/uint16, the image's shape without channels), ``model.pt`` (a
normal model file) and ``identity.json``. Written atomically (temporary file, then rename), so
a crash while saving keeps the previous version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ANNOTATIONS = "annotations.tif"
MODEL = "model.pt"
IDENTITY = "identity.json"
_SAMPLE_PIXELS = 1_000_000  # pixels hashed of an in-memory image (a regular subsample)


@dataclass(frozen=True)
class ImageIdentity:
    """key: what makes the image itself ("file:<resolved path>" or "memory:<name, shape, hash>");
    name: a readable name; path: the image file, if any."""

    key: str
    name: str
    path: Path | None = None


def identity_of(name: str, path=None, data=None) -> ImageIdentity:
    """The identity of an image called ``name``, read from the file ``path`` (None: in memory),
    with pixels ``data`` (hashed when in memory: numpy only; lazy arrays by shape and type)."""
    if path:
        resolved = Path(path).resolve()
        return ImageIdentity(f"file:{resolved}", resolved.name, resolved)
    parts = [name]
    if data is not None:
        parts += [str(tuple(np.shape(data))), str(getattr(data, "dtype", ""))]
        if isinstance(data, np.ndarray):
            parts.append(_content_hash(data))
    return ImageIdentity("memory:" + "|".join(parts), name)


def _content_hash(data: np.ndarray) -> str:
    step = max(1, int((data.size / _SAMPLE_PIXELS) ** (1 / max(data.ndim, 1))))
    sample = np.ascontiguousarray(data[(slice(None, None, step),) * data.ndim])
    return hashlib.blake2b(sample.tobytes(), digest_size=8).hexdigest()


def cache_root() -> Path:
    if os.environ.get("NAPARI_UNET_AUTOSAVE"):
        return Path(os.environ["NAPARI_UNET_AUTOSAVE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "napari-unet" / "autosave"


def readable(name: str, limit: int = 60) -> str:
    """``name`` as a folder name: letters (any script), digits, '.', '-' and '_' kept, the rest '_'."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "image"
    while len(safe.encode()) > limit:
        safe = safe[:-1]
    return safe


def folder_for(identity: ImageIdentity) -> Path:
    """The autosave folder of an image: beside its file when that folder is writable, else in the cache."""
    if identity.path is not None:
        beside = identity.path.parent / f"{identity.path.name}.napari-unet"
        if beside.is_dir() or (identity.path.parent.is_dir() and os.access(identity.path.parent, os.W_OK)):
            return beside
    digest = hashlib.blake2b(identity.key.encode(), digest_size=5).hexdigest()
    return cache_root() / f"{readable(identity.name)}-{digest}"


def save(folder: Path, identity: ImageIdentity, annotations=None, model=None) -> list[Path]:
    """Write whichever of annotations / model is given, and whose they are; returns the files written.

    Errors (full disk, no permission) raise UserInputError with nothing half-written.
    """
    from ..files import atomic_path
    from ..model import modelfile
    from . import io

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    if annotations is not None:
        written.append(io.write_mask(folder / ANNOTATIONS, np.asarray(annotations)))
    if model is not None:
        written.append(modelfile.save_model(model, folder / MODEL))
    record = {"key": identity.key, "name": identity.name, "saved": time.strftime("%Y-%m-%d %H:%M:%S")}
    with atomic_path(folder / IDENTITY) as tmp:
        tmp.write_text(json.dumps(record, ensure_ascii=False))
    return written


def belongs_to(folder: Path, identity: ImageIdentity) -> bool:
    """Whether ``folder`` holds what was saved for ``identity`` (its identity.json says so)."""
    return (saved_record(folder) or {}).get("key") == identity.key


def saved_record(folder: Path) -> dict | None:
    """The folder's identity.json (key, name, saved: local time), None if missing or damaged."""
    try:
        record = json.loads((folder / IDENTITY).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def load_annotations(folder: Path, identity: ImageIdentity, shape) -> np.ndarray | None:
    """The autosaved annotations of this image if they exist and have ``shape``, else None."""
    from . import io

    path = folder / ANNOTATIONS
    if not path.exists() or not belongs_to(folder, identity):
        return None
    try:
        ann = io.read_labels(path)
    except Exception:  # noqa: BLE001 - a damaged autosave is ignored, never fatal
        return None
    return ann if tuple(ann.shape) == tuple(shape) else None


def model_path(folder: Path, identity: ImageIdentity) -> Path | None:
    path = folder / MODEL
    return path if path.exists() and belongs_to(folder, identity) else None
