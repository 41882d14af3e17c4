"""Rescaling planes for the network's object size (``prediction.size``): pixels bilinearly (averaged
over the pixels they cover when shrinking, so nothing aliases), labels by their nearest pixel, so
ids and annotation values stay what they were. The same two rules for training and prediction.
"""

from __future__ import annotations

import numpy as np


def scaled_shape(shape, scale: float) -> tuple[int, ...]:
    """``shape`` (Y, X, or any spatial shape) times ``scale``, rounded, at least 1 per axis."""
    return tuple(max(1, int(round(n * scale))) for n in shape)


def resize_image(chw: np.ndarray, shape) -> np.ndarray:
    """float32 (C, *shape) from float (C, Y, X): bilinear, with antialiasing along axes that shrink."""
    import torch
    import torch.nn.functional as F

    shape = tuple(int(n) for n in shape)
    x = np.asarray(chw, np.float32)
    if x.shape[1:] == shape:
        return x
    shrink = any(new < old for new, old in zip(shape, x.shape[1:]))
    with torch.no_grad():
        out = F.interpolate(torch.from_numpy(np.ascontiguousarray(x))[None], size=shape, mode="bilinear",
                            align_corners=False, antialias=shrink)
    return out[0].numpy()


def resize_labels(labels: np.ndarray, shape) -> np.ndarray:
    """``labels`` (Y, X) of any integer type at ``shape``: each new pixel takes the value of the old pixel
    its centre falls in."""
    labels = np.asarray(labels)
    shape = tuple(int(n) for n in shape)
    if labels.shape == shape:
        return labels
    index = [np.minimum(((np.arange(new) + 0.5) * old / new).astype(np.int64), old - 1)
             for new, old in zip(shape, labels.shape)]
    return labels[np.ix_(*index)]
