"""What crosses the process boundary between the viewer and the trainer: typed messages.

Every message is a dataclass of plain values and numpy arrays (they pickle), never a positional
tuple; each side dispatches on the message's type. No torch here: the viewer builds jobs before
it has imported torch.

parent -> child, on ``jobs``:      TrainJob, Quit
parent -> child, on ``previews``:  PreviewRequest (while a job runs: preview this from now on)
child -> parent, on the events pipe:
    TrainerReady          once, after torch is imported
    TrainingStarted       a job began (device, annotated pixels)
    Step, Notice,         ``engine.events``' own dataclasses, as ``fit`` yields them
    Validation
    PreviewLabels         the current model's labels of the preview image (made in the child)
    TrainingFinished      the model, also after Stop
    TrainingFailed        a one-line message, and the model so far if there is one
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.model.config import UNetConfig
from ..engine.training.config import TrainConfig
from ..engine.training.events import Notice, Step, Validation  # noqa: F401 (re-exported: child -> parent)


@dataclass
class PreviewRequest:
    """What to preview: ``image``, a plane channels first (C, Y, X) (for 3D models a slab of planes,
    (C, Z, Y, X); ``pipeline.preview_pixels``), ``window`` (y0, y1, x0, x1) of it or None for all of it, and ``tag``, returned with its
    previews: (plane indices along the stack axes, k), k the plane's index in a 3D slab (else None)."""

    image: np.ndarray
    window: tuple | None = None
    tag: tuple | None = None


@dataclass
class TrainJob:
    """Train on ``images`` and ``annotations`` (see ``train.fit``).

    init_model: a model file's content (``modelfile.model_to_dict``) to fine-tune, or None for a new model
    built from ``unet_config``. instances: previews as object ids (else semantic labels).
    objects: per image, painted whole objects (int ids, 0 = none) or None (see ``engine.training.painted``).
    """

    images: list
    annotations: list
    config: TrainConfig
    init_model: dict | None = None
    unet_config: UNetConfig | None = None
    preview: PreviewRequest | None = None
    instances: bool = True
    objects: list | None = None
    checked: list | None = None  # per image None or a (H, W) bool mask of checked regions (held out, scored)
    axes: str | None = None  # the layout of ``images`` (``train.fit``): "CYX" for the planes of ``dataset.training_set``
    diameter: object = "auto"  # the objects' diameter (px), "auto" or None (``train.fit``)
    start: str = ""  # "auto": without init_model, start from the bundled model that agrees with the strokes
    # (``training.start``), else a new network; the child says which (a Notice)


@dataclass
class Quit:
    """End the child process."""


@dataclass
class TrainerReady:
    """The child has imported torch and waits for jobs."""


@dataclass
class TrainingStarted:
    device: str
    annotated_pixels: int


@dataclass
class PreviewLabels:
    """labels: (H, W) of the preview image (or of its window); probabilities: (K, H, W) float16
    for a whole 2D image, else None (a window or a plane of a stack is pasted as labels alone);
    classes: with instances, the class of each id 1..N; window and tag: as in the PreviewRequest."""

    step: int
    elapsed: float
    labels: np.ndarray
    probabilities: np.ndarray | None
    classes: np.ndarray | None
    window: tuple | None
    tag: tuple | None


@dataclass
class TrainingFinished:
    model: dict  # modelfile.model_to_dict
    verdict: object = None  # the regression guard's ``training.guard.Verdict`` (a model that continued), or None


@dataclass
class TrainingFailed:
    message: str
    model: dict | None = None


__all__ = ["PreviewRequest", "TrainJob", "Quit", "TrainerReady", "TrainingStarted", "Step", "Notice",
           "PreviewLabels", "TrainingFinished", "TrainingFailed"]
