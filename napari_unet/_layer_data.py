"""Pixels out of napari layers, and the background prediction job. No Qt here.

Layers are duck-typed (``data``, ``rgb``, ``multiscale``, ``name``), so napari is not imported.
"""

from __future__ import annotations

import numpy as np

from . import data
from .errors import UserInputError


def predict_jobs(model, jobs, want_instances):
    """Background generator: yields (kind, target, labels, probabilities, classes, done, total)."""
    from . import instances, io, predict

    for i, (kind, target) in enumerate(jobs):
        try:
            if kind == "layer":
                image, axis = image_array(target), channel_axis(target)
            else:
                image, axis = io.read_image(target), None
            if axis and axis != model.config.channel_axis:
                raise UserInputError(f"'{getattr(target, 'name', target)}' has channel layout {axis} but the "
                                     f"model expects {model.config.channel_axis}; pick a matching image")
            probs = predict.predict_probabilities(model, image)
            if want_instances:
                result = instances.instance_labels(probs)
                labels, classes = result.labels, result.classes
            else:
                labels, classes = instances.semantic_labels(probs), None
            if kind == "file":
                io.write_mask(target.with_name(f"{target.stem}_masks.tif"), labels)
            yield kind, target, labels, probs, classes, i + 1, len(jobs)
        except UserInputError as exc:
            yield "error", target, str(exc), None, None, i + 1, len(jobs)


def image_array(layer) -> np.ndarray:
    """Full-resolution pixels of an Image layer as a numpy array."""
    d = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return np.asarray(d)


def channel_axis(layer) -> str:
    if getattr(layer, "rgb", False):
        return "last"
    return data.infer_channel_axis(np.shape(layer.data[0] if layer.multiscale else layer.data))


def spatial_shape(layer) -> tuple[int, int]:
    arr = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    axis = channel_axis(layer)
    shape = tuple(arr.shape)
    return shape[:2] if axis == "last" else shape[-2:]


def visible_window(layer, shape_hw, max_side: int):
    """The on-screen part of ``layer`` as (y0, y1, x0, x1), at most ``max_side`` square.

    None when the whole image fits in ``max_side``: live previews predict only this
    window, so they stay cheap however large the image. Uses ``layer.corner_pixels``
    (the data coordinates of the canvas corners); without it, the image centre.
    """
    h, w = shape_hw
    if h <= max_side and w <= max_side:
        return None
    try:
        (y0, x0), (y1, x1) = np.asarray(layer.corner_pixels)[:, -2:]
    except (AttributeError, ValueError, IndexError):
        y0, x0, y1, x1 = 0, 0, h, w
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    sy, sx = min(max(y1 - y0, 64), max_side, h), min(max(x1 - x0, 64), max_side, w)
    ys = int(np.clip(cy - sy // 2, 0, h - sy))
    xs = int(np.clip(cx - sx // 2, 0, w - sx))
    return (ys, ys + int(sy), xs, xs + int(sx))
