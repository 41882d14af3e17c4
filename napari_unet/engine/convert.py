"""Image conversion, the one rule for pixels: any array to channels-first planes, normalised per image.

Images are turned into ``(C, *spatial)`` float32 arrays, normalised per image and channel by
percentiles (stored in the model config, so prediction sees exactly what training saw).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError

CHANNEL_AXES = ("none", "last", "first")
_MAX_PERCENTILE_SAMPLES = 2_000_000


def as_array(image):
    """numpy and dask arrays as they are; zarr arrays as lazy dask arrays; anything else via numpy.

    Lazy arrays are read only where they are sliced, so images larger than memory work.
    """
    if isinstance(image, np.ndarray) or hasattr(image, "dask"):
        return image
    if type(image).__module__.startswith("zarr"):
        import dask.array as da

        return da.from_zarr(image)
    return np.asarray(image)


def to_channels_first(image, channel_axis: str, spatial_dims: int = 2):
    """Return a view of shape (C, *spatial) in the image's own dtype (no copy; dask stays lazy).

    spatial_dims: 2 for planes (Y, X), 3 for volumes (Z, Y, X); channels sit before
    ("first"), after ("last") or nowhere ("none"): see ``layout.input_layout`` for the guess.
    """
    image = as_array(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if image.dtype.kind not in "uif":
        raise UserInputError(f"image dtype {image.dtype} is not numeric; convert it to a number type")
    axis = channel_axis
    if axis not in CHANNEL_AXES:
        raise UserInputError(f"channel axis {axis!r} unknown; use one of {', '.join(CHANNEL_AXES)}")
    expected_ndim = spatial_dims + (axis != "none")
    if image.ndim != expected_ndim:
        kind = "2D" if spatial_dims == 2 else "3D (volume)"
        raise UserInputError(
            f"image has shape {image.shape} but the {kind} model expects channel layout {axis!r} "
            f"({expected_ndim} dimensions); give a matching image or another model"
        )
    if axis == "none":
        return image[None]
    if axis == "last":
        return np.moveaxis(image, -1, 0)
    return image


def percentile_range(image_chw: np.ndarray, percentiles=(1.0, 99.8)) -> np.ndarray:
    """Per-channel (low, high) intensities, shape (C, 2) float64, from a strided subsample.

    image_chw: (C, H, W) or (C, Z, H, W). Subsampling (in Y and X) keeps this O(1)
    in memory for huge images; NaN/inf pixels are ignored.
    """
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


def normalize(image_chw: np.ndarray, value_range: np.ndarray) -> np.ndarray:
    """Map ``value_range`` (C, 2) to [0, 1] per channel; returns float32 (C, *spatial), NaN/inf -> 0."""
    expand = (slice(None),) + (None,) * (np.ndim(image_chw) - 1)
    lo = value_range[:, 0].astype(np.float32)[expand]
    scale = (value_range[:, 1] - value_range[:, 0]).astype(np.float32)
    scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)[expand]
    out = (np.asarray(image_chw, dtype=np.float32) - lo) / scale
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def prepare_image(image, channel_axis: str, percentiles, spatial_dims: int = 2) -> np.ndarray:
    """Raw image -> normalised float32 (C, *spatial)."""
    chw = to_channels_first(image, channel_axis, spatial_dims)
    return normalize(chw, percentile_range(chw, percentiles))
