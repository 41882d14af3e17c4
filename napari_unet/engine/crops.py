"""Crops of arrays at any place, padded where they reach past the edge (training patches)."""

from __future__ import annotations

import numpy as np


def crop_padded(array: np.ndarray, starts, sizes, mode: str) -> np.ndarray:
    """Crop the last ``len(starts)`` axes of ``array`` at ``starts`` with ``sizes``, padding outside.

    mode: "reflect" (mirror the image; works for any size) or "zeros" (for annotations:
    0 means not annotated, so padding is ignored by the loss).
    """
    lead = array.ndim - len(starts)
    shape = array.shape[lead:]
    inside = [(max(s, 0), min(s + n, dim)) for s, n, dim in zip(starts, sizes, shape)]
    crop = array[(Ellipsis,) + tuple(slice(a, b) for a, b in inside)]
    pads = [(a - s, s + n - b) for (a, b), s, n in zip(inside, starts, sizes)]
    if not any(p for pair in pads for p in pair):
        return crop
    pad_width = [(0, 0)] * lead + pads
    if mode == "zeros":
        return np.pad(crop, pad_width)
    # "symmetric" mirrors including the edge pixel, which works even for 1-pixel images;
    # np.pad repeats the mirroring when the pad is larger than the array.
    return np.pad(crop, pad_width, mode="symmetric")
