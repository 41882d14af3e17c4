"""What ``train.fit`` yields: plain dataclasses (no torch here), so a process that only shows
progress can read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Started:
    """Training began; ``model`` is trained in place from now on."""

    model: "SegmentationModel"  # noqa: F821 (engine.model)
    device: str
    annotated_pixels: int


@dataclass
class Step:
    step: int
    loss: float
    elapsed: float  # seconds since training started
    learning_rate: float
    pixels_per_second: float


@dataclass
class Preview:
    """Prediction of the preview image, or of its window (y0, y1, x0, x1) when one was given.

    probabilities: (n_outputs, y1 - y0, x1 - x0) float32.
    """

    step: int
    elapsed: float
    probabilities: np.ndarray
    window: tuple[int, int, int, int] | None = None
    tag: object = None  # what the caller attached to this preview image (e.g. its plane)
    split: np.ndarray | None = None  # the learned split output (y1 - y0, x1 - x0), once objects teach it


@dataclass
class Validation:
    """The model's score on the checked regions held out of training (``engine.validation``):
    foreground Dice over their annotated pixels, instance F1 at IoU 0.5 (mean over regions)."""

    step: int
    elapsed: float
    dice: float
    f1: float
    pixels: int


@dataclass
class Notice:
    """Something the user should know that did not stop training (e.g. a smaller batch after OOM)."""

    message: str


@dataclass
class Finished:
    """Training ended; ``model`` holds the round's weights. For a model that continued (or was
    fine-tuned): ``verdict``, the regression guard's scores of the earlier and the new model on what
    the user confirmed (``guard.Verdict``), and ``earlier``, the model as it was before the round."""

    model: "SegmentationModel"  # noqa: F821 (engine.model)
    summary: dict = field(default_factory=dict)
    verdict: object = None
    earlier: object = None


