"""Models that ship with napari-unet (``napari_unet/models/<name>.pt``), usable by name wherever a
model file is: ``predict nuclei IMAGE``, ``train --init nuclei``, Load model and the widget's
starting model.

A bundled model is an ordinary model file; its card (what it was trained on, its licence, its
measured figures) is ``summary["card"]`` inside it, written by ``tools/train_bundled_model.py``
(``napari-unet models`` prints it). This module only resolves names, so ``modelfile`` can use it.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import UserInputError

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_MODEL = "nuclei"  # the widget's starting model for a new image (first in Start from)


def bundled_names() -> list[str]:
    """Names of the bundled models, sorted (``nuclei`` for ``models/nuclei.pt``)."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.pt")) if MODELS_DIR.is_dir() else []


def model_path(spec) -> Path:
    """The file a model argument means: an existing path as given, else a bundled model's name.

    Raises UserInputError naming the bundled models when ``spec`` is neither.
    """
    path = Path(spec)
    if path.exists() or path.suffix or len(path.parts) > 1:
        return path  # a path (load_model says if it is missing or not a model)
    if str(spec) in bundled_names():
        return MODELS_DIR / f"{spec}.pt"
    known = ", ".join(bundled_names()) or "none installed"
    raise UserInputError(f"no model file or bundled model named {spec!r}; bundled models: {known} "
                         "(or give the path of a .pt model file)")
