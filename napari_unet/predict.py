"""Tiled prediction with overlap and smooth blending.

The image is cut into tiles of ``tile_size`` pixels that overlap by ``overlap``.
Each tile's class probabilities are weighted by a window that is 1 in the middle
and falls off smoothly (raised cosine) across the overlap, except on sides that
touch the image border; weighted sums are divided by the summed weights, so no
seam shows and tiled output matches untiled output closely. Tile origins sit on
multiples of ``2**depth`` so pooling sees the same pixel grid as an untiled pass.

Two entry points, both generators of progress events:

- ``iter_predict``: class probabilities of a whole image, (K, H, W) float32: for
  images that fit in memory (the viewer, instances, ``--probabilities``).
- ``iter_predict_labels``: semantic labels written block by block (``block_size``
  pixels plus an ``overlap`` halo read from the neighbours) into any array that
  accepts slice assignment (numpy, a zarr store on disk). Memory is then bounded
  by one block, whatever the image size; the input may be numpy, zarr or dask and
  is read one block at a time. ``chunked.py`` runs the same block function on dask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import data
from .device import autocast, is_out_of_memory, memory_format
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
class LabelsDone:
    """labels: the output array (H, W) uint8 semantic labels, 0 = background."""

    labels: object


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
    chw = data.to_channels_first(image, model.config.channel_axis)
    _check_channels(chw.shape[0], model.config)
    if value_range is None:
        value_range = data.percentile_range(chw, model.config.norm_percentiles)
    probs = yield from _iter_tiles(model, np.asarray(chw), value_range, tile_size, overlap, batch_size)
    yield PredictionDone(probs)


def _iter_tiles(model, chw: np.ndarray, value_range, tile_size, overlap, batch_size):
    """Generator: yields TileProgress per tile batch; returns (K, H, W) float32 probabilities."""
    _, h, w = chw.shape
    net, device = model.net, model.device
    th, tw, overlap, origins = _tile_geometry(h, w, tile_size, overlap, net.size_multiple)
    acc = np.zeros((model.config.n_outputs, h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    was_training = net.training
    net.to(memory_format=memory_format(device))
    net.eval()
    try:
        i = 0
        while i < len(origins):
            batch_origins = origins[i:i + batch_size]
            try:
                probs = _predict_tiles(net, device, chw, batch_origins, th, tw, value_range)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled
                if not is_out_of_memory(exc):
                    raise
                if batch_size == 1:
                    raise UserInputError(f"out of memory predicting one {th}x{tw} tile; "
                                         "use a smaller tile size (--tile-size) or the CPU") from None
                batch_size = 1  # retry the same tiles one at a time
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            for (y, x), p in zip(batch_origins, probs):
                _accumulate(acc, weight, p, y, x, overlap)
            i += len(batch_origins)
            yield TileProgress(i, len(origins))
    finally:
        net.train(was_training)
    acc /= weight
    return acc


def _predict_tiles(net, device, chw, origins, th, tw, value_range) -> np.ndarray:
    """Class probabilities (B, K, th, tw) float32 of the tiles at ``origins``."""
    tiles = [data.normalize(data.crop_padded(chw, y, x, th, tw, "reflect"), value_range) for y, x in origins]
    x_t = torch.from_numpy(np.stack(tiles)).to(device)
    x_t = x_t.contiguous(memory_format=memory_format(device))
    with torch.inference_mode(), autocast(device):
        return torch.softmax(net(x_t).float(), dim=1).cpu().numpy()


def block_grid(h: int, w: int, block_size: int, multiple: int) -> list[tuple[int, int, int, int]]:
    """Blocks (y0, y1, x0, x1) of at most ``block_size`` (a multiple of ``multiple``) covering (h, w)."""
    block = max(multiple, block_size // multiple * multiple)
    return [(y, min(y + block, h), x, min(x + block, w))
            for y in range(0, h, block) for x in range(0, w, block)]


def predict_block(model, chw, block, value_range, *, halo: int = DEFAULT_OVERLAP,
                  tile_size: int = DEFAULT_TILE, batch_size: int = 4) -> np.ndarray:
    """Semantic labels (y1-y0, x1-x0) uint8 of one block of a (C, H, W) array-like.

    The block is read with a ``halo`` of context from its neighbours (none past the
    image border, where tiles are mirrored as usual), so blocks join without seams.
    """
    events = _iter_block(model, chw, block, value_range, halo, tile_size, batch_size)
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return stop.value


def _iter_block(model, chw, block, value_range, halo, tile_size, batch_size):
    _, h, w = chw.shape
    y0, y1, x0, x1 = block
    ey0, ey1, ex0, ex1 = max(y0 - halo, 0), min(y1 + halo, h), max(x0 - halo, 0), min(x1 + halo, w)
    sub = np.asarray(chw[:, ey0:ey1, ex0:ex1])
    probs = yield from _iter_tiles(model, sub, value_range, tile_size, halo, batch_size)
    inner = probs[:, y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]
    return inner.argmax(0).astype(np.uint8 if inner.shape[0] <= 256 else np.uint16)


def iter_predict_labels(model: SegmentationModel, image, out=None, *, block_size: int = 2048,
                        tile_size: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                        batch_size: int = 4, value_range=None):
    """Yield TileProgress events, then LabelsDone(out) with semantic labels (H, W).

    image: raw 2D image in the model's channel layout (numpy, zarr or dask: only one
    block plus its halo is read at a time). out: an (H, W) array to write into
    (e.g. a zarr array; a new uint8 numpy array when None). Peak memory is one
    block of probabilities, ~(K+2) * (block_size + 2 * overlap)^2 * 4 bytes.
    """
    cfg = model.config
    chw = data.to_channels_first(image, cfg.channel_axis)
    _check_channels(chw.shape[0], cfg)
    if value_range is None:
        value_range = data.percentile_range(chw, cfg.norm_percentiles)
    _, h, w = chw.shape
    if out is None:
        out = np.zeros((h, w), np.uint8 if cfg.n_outputs <= 256 else np.uint16)
    multiple = model.net.size_multiple
    halo = -(-overlap // multiple) * multiple
    blocks = block_grid(h, w, block_size, multiple)
    totals = [len(_tile_geometry(min(y1 + halo, h) - max(y0 - halo, 0), min(x1 + halo, w) - max(x0 - halo, 0),
                                 tile_size, halo, multiple)[3]) for y0, y1, x0, x1 in blocks]
    done = 0
    for block, n in zip(blocks, totals):
        events = _iter_block(model, chw, block, value_range, halo, tile_size, batch_size)
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                labels = stop.value
                break
            yield TileProgress(done + event.done, sum(totals))
        y0, y1, x0, x1 = block
        out[y0:y1, x0:x1] = labels
        done += n
    yield LabelsDone(out)


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
