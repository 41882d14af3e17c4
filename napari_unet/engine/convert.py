"""Image conversion, the one rule for pixels: channels-first planes to the network's input.

Each image (plane, volume) is converted on its own: ``conversion_for`` reads a subsample once and
decides a ``Conversion``; ``normalize`` applies it to any part of the image (a block, a tile), so a
large image is converted block by block as if it had been done whole. A conversion is:

- **colour to grey**: an RGB or RGBA image (3 or 4 channels) for a one-channel network becomes its
  luminance, ``LUMINANCE`` weights of R, G and B (ITU-R BT.709, as scikit-image's ``rgb2gray``;
  alpha is dropped), so the bundled grayscale models take PNG and JPEG files and napari's RGB layers;
- **grey to colour**: a one-channel image for an RGB network (one trained on RGB layers) becomes
  three equal channels, as a grey image saved as RGB is; an RGBA image loses its alpha;
- **percentile scaling**: per channel, the ``norm_percentiles`` of the model (1st and 99.8th by
  default) map to 0 and 1 (stored in the model, so prediction sees what training saw);
- **inversion** for models that ask for it (``UNetConfig.invert_bright_background``, the nuclei
  generalist): an image whose background is bright (the commonest grey level, its histogram's mode,
  above the middle of the range: stained brightfield, H&E) is inverted, so objects come bright on a
  dark background as the model learned them. The mode, not the median: a field dense with bright
  nuclei has most of its pixels bright but its background is still the one flat, common grey (on
  652 DSB2018 images with nuclei it disagreed with the masks twice, on 147 BBBC039 fields never).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserInputError

_MAX_PERCENTILE_SAMPLES = 2_000_000
LUMINANCE = (0.2125, 0.7154, 0.0721)  # R, G, B weights of the grey a one-channel model sees
BRIGHT_BACKGROUND = 0.5  # the histogram mode of a normalised image above this: a bright background
_MODE_BINS = 64


@dataclass(frozen=True)
class Conversion:
    """How one image's pixels become the network's input (``conversion_for``).

    value_range: (C, 2) float64, per channel the network sees, the intensities mapped to 0 and 1;
    grey: RGB(A) channels are first mixed to their luminance (one channel);
    rgb: a grey image is first made three equal channels, an RGBA image its RGB (for an RGB network);
    invert: the result is turned around (1 - x): dark objects on a bright background become bright;
    notice: one line for the user when the colour was converted or the image inverted, else None.
    """

    value_range: np.ndarray
    grey: bool = False
    rgb: bool = False
    invert: bool = False
    notice: str | None = None  # one line saying what was done beyond scaling, None when nothing was


def check_numeric(image) -> None:
    """Refuse pixels that are not numbers (strings, objects) with one line."""
    if np.dtype(image.dtype).kind not in "uifb":
        raise UserInputError(f"image dtype {image.dtype} is not numeric; convert it to a number type")


def wants_grey(n_channels: int, in_channels: int) -> bool:
    """Whether an image of ``n_channels`` meets a network of ``in_channels`` as RGB(A) to grey."""
    return in_channels == 1 and n_channels in (3, 4)


def wants_rgb(n_channels: int, in_channels: int) -> bool:
    """Whether an image of ``n_channels`` meets a network of ``in_channels`` as grey (or RGBA) to RGB."""
    return in_channels == 3 and n_channels in (1, 4)


def _subsample(image_chw) -> np.ndarray:
    """A strided subsample (in Y and X) of at most ~2M pixels per channel, float64 (C, N): O(1) in
    memory for huge images."""
    check_numeric(image_chw)
    c, h, w = image_chw.shape[0], *image_chw.shape[-2:]
    per_plane = int(np.prod(image_chw.shape[1:-2], dtype=np.int64))
    step = max(1, int(np.sqrt(h * w * per_plane / _MAX_PERCENTILE_SAMPLES)))
    return np.asarray(image_chw[..., ::step, ::step], dtype=np.float64).reshape(c, -1)


def _mix(values: np.ndarray, grey: bool, rgb: bool = False) -> np.ndarray:
    """(C, ...) -> (1, ...) luminance of the first three channels when ``grey``; with ``rgb`` (3, ...): one
    channel three times, or the first three; else unchanged."""
    if rgb:
        return np.repeat(values, 3, axis=0) if values.shape[0] == 1 else values[:3]
    if not grey:
        return values
    weights = np.asarray(LUMINANCE, values.dtype if values.dtype.kind == "f" else np.float64)
    return np.tensordot(weights, values[:3], axes=(0, 0))[None]


def _ranges(sample: np.ndarray, percentiles) -> np.ndarray:
    out = np.zeros((sample.shape[0], 2))
    for i, row in enumerate(sample):
        row = row[np.isfinite(row)]
        if row.size:
            out[i] = np.percentile(row, percentiles)
    return out


def percentile_range(image_chw, percentiles=(1.0, 99.8)) -> np.ndarray:
    """Per-channel (low, high) intensities, shape (C, 2) float64, from a strided subsample.

    image_chw: (C, H, W) or (C, Z, H, W), numpy or lazy; NaN/inf pixels are ignored.
    """
    return _ranges(_subsample(image_chw), percentiles)


def conversion_for(image_chw, config=None, percentiles=None) -> Conversion:
    """The conversion of one image (plane, volume), channels first (C, *spatial), numpy or lazy, for
    a network of ``config`` (a UNetConfig: its channels, percentiles and inversion; None: scaling by
    ``percentiles`` alone, default 1st and 99.8th)."""
    sample = _subsample(image_chw)
    finite = float(np.isfinite(sample).mean()) if sample.size else 1.0
    if finite == 0.0:
        raise UserInputError("the image holds no numbers: all its pixels are NaN or infinite; check the file or the "
                             "layer")
    grey = config is not None and wants_grey(sample.shape[0], config.in_channels)
    rgb = config is not None and wants_rgb(sample.shape[0], config.in_channels)
    was_grey = sample.shape[0] == 1
    sample = _mix(sample, grey, rgb)
    value_range = _ranges(sample, percentiles or getattr(config, "norm_percentiles", (1.0, 99.8)))
    invert = False
    if getattr(config, "invert_bright_background", False) and sample.shape[0] == 1:
        invert = _bright_mode(_scale(sample, value_range)[0])
    done = (["RGB converted to grey (luminance) for a grayscale model"] if grey else []) + \
        ([("a grey image read as RGB (three equal channels)" if was_grey else "RGBA read as RGB (alpha dropped)")
          + " for a colour model"] if rgb else []) + \
        (["inverted (a bright background: objects made bright on dark, as the model learned them)"]
         if invert else []) + \
        ([f"{100 * (1 - finite):.2g} % of the pixels are NaN or infinite: taken as the lowest intensity"]
         if finite < 1.0 else [])
    return Conversion(value_range, grey, rgb, invert, "; ".join(done) or None)


def _bright_mode(scaled: np.ndarray) -> bool:
    """Whether the histogram mode of normalised grey values (about 0..1) is above ``BRIGHT_BACKGROUND``."""
    counts, edges = np.histogram(np.clip(scaled[np.isfinite(scaled)], 0, 1), _MODE_BINS, (0.0, 1.0))
    return bool(edges[counts.argmax()] + 0.5 / _MODE_BINS > BRIGHT_BACKGROUND)


def has_bright_background(image_chw) -> bool:
    """Whether an image (channels first, (C, *spatial), numpy or lazy) has a bright background (stained
    or brightfield: dark objects on light), by the rule of the inversion: its luminance's histogram mode,
    after percentile scaling, above the middle of the range."""
    sample = _subsample(image_chw)
    sample = _mix(sample, sample.shape[0] in (3, 4))
    return _bright_mode(_scale(sample, _ranges(sample, (1.0, 99.8)))[0])


def _scale(values: np.ndarray, value_range: np.ndarray) -> np.ndarray:
    expand = (slice(None),) + (None,) * (values.ndim - 1)
    lo = value_range[:, 0].astype(np.float32)[expand]
    scale = (value_range[:, 1] - value_range[:, 0]).astype(np.float32)
    scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)[expand]
    return (values - lo) / scale


def normalize(image_chw, conversion) -> np.ndarray:
    """Apply ``conversion`` (a Conversion, or a (C, 2) value range: scaling alone) to ``image_chw`` (or
    any part of it, e.g. a block); returns float32 (C', *spatial) (C' = 1 after grey), NaN/inf -> 0."""
    check_numeric(image_chw)
    if not isinstance(conversion, Conversion):
        conversion = Conversion(np.asarray(conversion, np.float64))
    values = _mix(np.asarray(image_chw, dtype=np.float32), conversion.grey, conversion.rgb)
    out = _scale(values, conversion.value_range).astype(np.float32, copy=False)
    if conversion.invert:
        out = 1.0 - out
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def prepare(image_chw, config=None, percentiles=None) -> np.ndarray:
    """A whole plane (volume), channels first, converted on its own: float32 (C', *spatial)."""
    return normalize(image_chw, conversion_for(image_chw, config, percentiles))
