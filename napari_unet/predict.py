"""Tiled prediction with overlap and smooth blending.

The image is cut into tiles of ``tile_size`` pixels that overlap by ``overlap``.
Each tile's class probabilities are weighted by a window that is 1 in the middle
and falls off smoothly (raised cosine) across the overlap, except on sides that
touch the image border; weighted sums are divided by the summed weights, so no
seam shows and tiled output matches untiled output closely. Tile origins sit on
multiples of ``2**depth`` so pooling sees the same pixel grid as an untiled pass.

Memory is bounded by the tile batch plus the outputs: the normalised image is
never built whole, only tile by tile. Long work is the generator
``iter_predict``; ``predict_probabilities`` simply runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import data
from .device import autocast, memory_format
from .errors import UserInputError
from .model import SegmentationModel

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64


@dataclass
class TileProgress:
    """``done`` of ``total`` tiles predicted."""

    done: int
    total: int


@dataclass
class PredictionDone:
    """probabilities: (n_outputs, H, W) float32; channel 0 is background."""

    probabilities: np.ndarray


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Start offsets that cover ``range(length)`` with tiles of ``tile`` (may end past it)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] + tile < length:
        starts.append(starts[-1] + step)
    return starts


def blend_window(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1D weights (length,) float32: raised-cosine ramps of ``overlap`` pixels at chosen ends."""
    w = np.ones(length, np.float32)
    n = min(overlap, length // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        ramp = np.maximum(ramp, 1e-3).astype(np.float32)
        if ramp_start:
            w[:n] = ramp
        if ramp_end:
            w[-n:] = ramp[::-1]
    return w


def _tile_geometry(h: int, w: int, tile_size: int, overlap: int, multiple: int):
    """Tile (th, tw) and the list of (y0, x0) origins, all on multiples of ``multiple``.

    Tiles are at most ``tile_size`` and spread evenly: a 520-pixel side becomes two
    tiles of 296, not two of 512 (which would compute almost twice the pixels).
    """
    round_up = lambda v: -(-v // multiple) * multiple  # noqa: E731
    overlap = round_up(overlap)
    tile_size = max(round_up(tile_size), 2 * overlap + multiple)

    def side(length: int) -> int:
        length = round_up(length)
        if length <= tile_size:
            return length
        n = -(-(length - overlap) // (tile_size - overlap))
        return min(tile_size, round_up(-(-(length + (n - 1) * overlap) // n)))

    th, tw = side(h), side(w)
    ys = tile_starts(round_up(h), th, th - overlap)
    xs = tile_starts(round_up(w), tw, tw - overlap)
    return th, tw, overlap, [(y, x) for y in ys for x in xs]


def iter_predict(model: SegmentationModel, image, *, tile_size: int = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP, batch_size: int = 4, value_range=None):
    """Yield TileProgress events, then one PredictionDone with the probabilities.

    image: raw image in the model's channel layout (any numeric dtype; numpy, or
    any array that supports slicing, e.g. zarr/dask). value_range: per-channel
    (C, 2) normalisation range; computed from the image when None.
    """
    cfg = model.config
    chw = data.to_channels_first(image, cfg.channel_axis)
    _check_channels(chw.shape[0], cfg)
    if value_range is None:
        value_range = data.percentile_range(chw, cfg.norm_percentiles)
    _, h, w = chw.shape
    net, device = model.net, model.device
    th, tw, overlap, origins = _tile_geometry(h, w, tile_size, overlap, net.size_multiple)
    acc = np.zeros((cfg.n_outputs, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    was_training = net.training
    net.to(memory_format=memory_format(device))
    net.eval()
    try:
        for i in range(0, len(origins), batch_size):
            batch_origins = origins[i:i + batch_size]
            tiles = [data.normalize(data.crop_padded(chw, y, x, th, tw, "reflect"), value_range)
                     for y, x in batch_origins]
            x_t = torch.from_numpy(np.stack(tiles)).to(device)
            x_t = x_t.contiguous(memory_format=memory_format(device))
            with torch.inference_mode(), autocast(device):
                probs = torch.softmax(net(x_t).float(), dim=1).cpu().numpy()
            for (y, x), p in zip(batch_origins, probs):
                _accumulate(acc, weight, p, y, x, overlap)
            yield TileProgress(min(i + batch_size, len(origins)), len(origins))
    finally:
        net.train(was_training)
    acc /= weight
    yield PredictionDone(acc)


def _accumulate(acc, weight, probs, y, x, overlap):
    """Add one tile's window-weighted probabilities into the accumulators (in place)."""
    _, h, w = acc.shape
    th, tw = probs.shape[-2:]
    wy = blend_window(th, overlap, y > 0, y + th < h)
    wx = blend_window(tw, overlap, x > 0, x + tw < w)
    win = wy[:, None] * wx[None, :]
    vh, vw = min(th, h - y), min(tw, w - x)
    win = win[:vh, :vw]
    acc[:, y:y + vh, x:x + vw] += probs[:, :vh, :vw] * win
    weight[y:y + vh, x:x + vw] += win


def predict_probabilities(model: SegmentationModel, image, **kwargs) -> np.ndarray:
    """(n_outputs, H, W) float32 class probabilities; see iter_predict for arguments."""
    for event in iter_predict(model, image, **kwargs):
        if isinstance(event, PredictionDone):
            return event.probabilities
    raise RuntimeError("prediction ended without a result")


def _check_channels(n_channels: int, cfg) -> None:
    if n_channels != cfg.in_channels:
        raise UserInputError(
            f"the image has {n_channels} channel(s) but the model was trained on "
            f"{cfg.in_channels}; use an image like the training images or train a new model"
        )
