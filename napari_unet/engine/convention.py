"""The label convention (the same in the GUI, the CLI and files).

Annotations (what the user paints):
    0 = not annotated (ignored by the loss), 1 = background, 2..K+1 = object classes
    (2 = the first class).
Predictions (what the model returns):
    semantic: 0 = background, k >= 1 = the k-th object class (annotation value k+1);
    instances: 0 = background, each object its own id >= 1 (its class kept alongside).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError

UNLABELED = 0
BACKGROUND = 1
FIRST_CLASS = 2


def check_annotations(annotations, image_shape_hw: tuple[int, ...]) -> np.ndarray:
    """Validate one annotation image and return it as int16 (H, W) (or (Z, H, W) for volumes).

    Raises UserInputError for a wrong shape, negative or fractional values.
    """
    ann = np.asarray(annotations)
    if ann.shape != tuple(image_shape_hw):
        raise UserInputError(
            f"annotations have shape {ann.shape} but the image is {tuple(image_shape_hw)}; "
            "paint on a Labels layer of the image's shape"
        )
    if ann.dtype == bool:
        raise UserInputError(
            "annotations are boolean; use 1 for background and 2.. for object classes"
        )
    if ann.dtype.kind == "f":
        if not np.isfinite(ann).all() or not np.array_equal(ann, np.round(ann)):
            raise UserInputError("annotations contain fractional or NaN values; use whole numbers 0..K")
    elif ann.dtype.kind not in "ui":
        raise UserInputError(f"annotations of dtype {ann.dtype} are not labels; use integers")
    if ann.size and ann.min() < 0:
        raise UserInputError("annotations contain negative values; use 0 (unlabeled), 1 (background), 2.. (classes)")
    if ann.size and ann.max() > 255:
        values = np.unique(ann.ravel()[:: max(1, ann.size // 200_000)])  # a subsample: enough to tell
        if len(values) > 50:
            raise UserInputError(f"this looks like an image, not annotations (values up to {int(ann.max())}, "
                                 f"{len(values)}+ different ones); give the painted labels: 0 unlabeled, 1 "
                                 "background, 2.. classes")
        raise UserInputError(f"annotation value {int(ann.max())} is too large; use at most 255 (254 classes)")
    return ann.astype(np.int16)


def prediction_to_annotations(pred: np.ndarray, instance_mode: bool, classes=None) -> np.ndarray:
    """Prediction labels (H, W) -> annotation values (H, W) uint8: background 1, class k -> k + 1.

    instance_mode: ``pred`` holds object ids; ``classes[i]`` is the class of id i+1 (ids
    without a known class, e.g. newly painted objects, count as the first class).
    """
    pred = np.asarray(pred)
    if not instance_mode:
        return np.where(pred > 0, pred.astype(np.int64) + 1, BACKGROUND).astype(np.uint8)
    if classes is None or len(classes) == 0:
        return np.where(pred > 0, FIRST_CLASS, BACKGROUND).astype(np.uint8)
    lut = np.full(int(max(pred.max(), len(classes))) + 1, FIRST_CLASS, np.uint8)
    lut[0] = BACKGROUND
    lut[1:len(classes) + 1] = np.asarray(classes) + 1
    return lut[pred]
