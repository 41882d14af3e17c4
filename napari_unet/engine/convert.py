"""Image conversion, the one rule for pixels: channels-first planes to the network's input.

Each image (plane, volume) is normalised on its own, per channel, by percentiles (stored in the
model config, so prediction sees exactly what training saw): ``percentile_range`` reads the
range once per image, ``normalize`` maps any part of the image (a block, a tile) with it, so a
large image is normalised block by block as if it had been done whole.
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError

_MAX_PERCENTILE_SAMPLES = 2_000_000


def check_numeric(image) -> None:
    """Refuse pixels that are not numbers (strings, objects) with one line."""
    if np.dtype(image.dtype).kind not in "uifb":
        raise UserInputError(f"image dtype {image.dtype} is not numeric; convert it to a number type")


def percentile_range(image_chw, percentiles=(1.0, 99.8)) -> np.ndarray:
    """Per-channel (low, high) intensities, shape (C, 2) float64, from a strided subsample.

    image_chw: (C, H, W) or (C, Z, H, W), numpy or lazy. Subsampling (in Y and X) keeps this O(1)
    in memory for huge images; NaN/inf pixels are ignored.
    """
    check_numeric(image_chw)
    c, h, w = image_chw.shape[0], *image_chw.shape[-2:]
    per_plane = int(np.prod(image_chw.shape[1:-2], dtype=np.int64))
    step = max(1, int(np.sqrt(h * w * per_plane / _MAX_PERCENTILE_SAMPLES)))
    sample = np.asarray(image_chw[..., ::step, ::step], dtype=np.float64).reshape(c, -1)
    out = np.zeros((c, 2))
    for i, row in enumerate(sample):
        row = row[np.isfinite(row)]
        if row.size:
            out[i] = np.percentile(row, percentiles)
    return out


def normalize(image_chw, value_range: np.ndarray) -> np.ndarray:
    """Map ``value_range`` (C, 2) to [0, 1] per channel; returns float32 (C, *spatial), NaN/inf -> 0."""
    check_numeric(image_chw)
    expand = (slice(None),) + (None,) * (np.ndim(image_chw) - 1)
    lo = value_range[:, 0].astype(np.float32)[expand]
    scale = (value_range[:, 1] - value_range[:, 0]).astype(np.float32)
    scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)[expand]
    out = (np.asarray(image_chw, dtype=np.float32) - lo) / scale
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def prepare(image_chw, percentiles=(1.0, 99.8)) -> np.ndarray:
    """A whole plane (volume), channels first, normalised by its own percentiles: float32 (C, *spatial)."""
    return normalize(image_chw, percentile_range(image_chw, percentiles))
