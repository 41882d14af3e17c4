"""Tiled prediction with overlap and smooth blending.

The image is cut into tiles of ``tile_size`` pixels that overlap by ``overlap``.
Each tile's class probabilities are weighted by a window that is 1 in the middle
and falls off smoothly (raised cosine) across the overlap, except on sides that
touch the image border; weighted sums are divided by the summed weights, so no
seam shows and tiled output matches untiled output closely. Tile origins sit on
multiples of ``2**depth`` so pooling sees the same pixel grid as an untiled pass.

Both entry points take one plane (volume) channels first, (C, *spatial), as ``layout.plane``
hands it over, normalise it once (per block) and cut the tiles from it on the model's device;
both are generators of progress events:

- ``iter_predict``: class probabilities of a whole image, (K, H, W) float32: for
  images that fit in memory (the viewer, instances, ``--probabilities``).
- ``iter_predict_labels``: semantic labels written block by block (``block_size``
  pixels plus an ``overlap`` halo read from the neighbours) into any array that
  accepts slice assignment (numpy, a zarr store on disk). Memory is then bounded
  by one block, whatever the image size; the input may be numpy, zarr or dask and
  is read one block at a time. ``cluster`` runs the same block function on dask.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np
import torch

from ...errors import UserInputError
from .. import convert, layout
from ..model.device import autocast, is_out_of_memory, memory_format
from ..model.unet import SegmentationModel, fuse_batchnorm

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
    """probabilities: (n_outputs, H, W) float32, channel 0 background; split: the split output
    (H, W) float32 in [0, 1] (see ``training.painted``), None for a model without one."""

    probabilities: np.ndarray
    split: np.ndarray | None = None


def tile_starts(length: int, tile: int, step: int) -> list[int]:
    """Start offsets that cover ``range(length)`` with tiles of ``tile``.

    The last tile ends exactly at ``length`` (not past it, where it would see mirrored
    pixels the untiled network never sees); with ``length`` and ``tile`` on the
    network's multiple, so is every start.
    """
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] + tile < length:
        starts.append(length - tile)
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


def tile_plan(model, tile_size: int, overlap: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-axis tile and overlap sizes for the model: squares in 2D; in 3D slabs of
    ``tile_size / 16`` planes (32 by default) with YX tiles of half the side (a similar
    voxel count) and an overlap of 8 planes."""
    if model.config.spatial_dims == 2:
        return (tile_size, tile_size), (overlap, overlap)
    half = max(tile_size // 2, 1)
    return (max(tile_size // 16, 1), half, half), (8, overlap, overlap)


def _tile_geometry(shape, tile, overlap, multiple):
    """Tile shape, per-axis overlaps and the list of tile origins, all on multiples of ``multiple``.

    shape, tile, overlap, multiple: one entry per spatial axis. Tiles are at most
    ``tile`` and spread evenly: a 520-pixel side becomes two tiles of 296, not two
    of 512 (which would compute almost twice the pixels).
    """
    sides, overlaps, starts = [], [], []
    for length, t, o, m in zip(shape, tile, overlap, multiple):
        round_up = lambda v, m=m: -(-v // m) * m  # noqa: E731
        o = round_up(o)
        t = max(round_up(t), 2 * o + m)
        length = round_up(length)
        side = length
        if length > t:
            n = -(-(length - o) // (t - o))
            side = min(t, round_up(-(-(length + (n - 1) * o) // n)))
        sides.append(side)
        overlaps.append(o)
        starts.append(tile_starts(length, side, side - o))
    return tuple(sides), tuple(overlaps), list(itertools.product(*starts))


def iter_predict(model: SegmentationModel, chw, *, tile_size: int = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP, batch_size: int = 4, conversion=None, scale: float = 1.0):
    """Yield TileProgress events, then one PredictionDone with the probabilities.

    chw: one plane (volume for 3D models), channels first, (C, *spatial) raw pixels of any numeric
    dtype (numpy, or any array that supports slicing, e.g. zarr/dask; ``layout.plane`` hands these
    over). conversion: how its pixels become the network's input (``convert.conversion_for``; a (C, 2)
    value range scales alone); read from it when None. scale: the plane is seen by the network at this
    scale (``size.scale_for``: its objects at the model's diameter; 2D models) and the probabilities
    come back at its own size.
    """
    if conversion is None:
        conversion = convert.conversion_for(chw, model.config)
    maps = yield from _iter_tiles(model, convert.normalize(chw, conversion), tile_size, overlap, batch_size, scale)
    k = model.config.n_outputs
    yield PredictionDone(maps[:k], maps[k] if maps.shape[0] > k else None)


def _iter_tiles(model, x: np.ndarray, tile_size, overlap, batch_size, scale: float = 1.0):
    """Generator: yields TileProgress per tile batch; returns (K + S, *spatial) float32: the class
    probabilities, then the S (0 or 1) split outputs (see ``_predict_tiles``), of the normalised
    float32 ``x`` (C, *spatial). The tiles are cut from ``x`` on the model's device, mirrored past
    the edges it rounds up to the network's multiple (as ``crops.crop_padded`` mirrors). With a
    ``scale`` (2D models), ``x`` is resized by it first and the maps back to its size."""
    if scale != 1.0 and model.config.spatial_dims == 2:
        from .. import resample

        resized = resample.resize_image(x, resample.scaled_shape(x.shape[1:], scale))
        maps = yield from _iter_tiles(model, resized, tile_size, overlap, batch_size)
        return resample.resize_image(maps, x.shape[1:])
    spatial = x.shape[1:]
    net, device = model.net, model.device
    tiles, overlaps = tile_plan(model, tile_size, overlap)
    tile, overlaps, origins = _tile_geometry(spatial, tiles, overlaps, net.size_multiples)
    reach = [max(o + t for o in {origin[a] for origin in origins}) for a, t in enumerate(tile)]
    pads = [(0, max(r - n, 0)) for r, n in zip(reach, spatial)]
    if any(after for _, after in pads):
        x = np.pad(x, [(0, 0)] + pads, mode="symmetric")
    x_t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    acc = np.zeros((model.config.n_outputs + model.config.n_split_outputs, *spatial), np.float32)
    weight = np.zeros(spatial, np.float32)
    was_training = net.training
    net.eval()
    net = fuse_batchnorm(net).to(memory_format=memory_format(device, model.config.spatial_dims))
    try:
        i = 0
        while i < len(origins):
            batch_origins = origins[i:i + batch_size]
            try:
                probs = _predict_tiles(net, device, x_t, batch_origins, tile, model.config.n_outputs)
            except Exception as exc:  # noqa: BLE001 - only out-of-memory is handled
                if not is_out_of_memory(exc):
                    raise
                if batch_size == 1:
                    raise UserInputError(f"out of memory predicting one {'x'.join(map(str, tile))} tile; "
                                         "use a smaller tile size (--tile-size) or the CPU") from None
                batch_size = 1  # retry the same tiles one at a time
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            for origin, p in zip(batch_origins, probs):
                _accumulate(acc, weight, p, origin, overlaps)
            i += len(batch_origins)
            yield TileProgress(i, len(origins))
    finally:
        model.net.train(was_training)
    acc /= weight
    return acc


def _predict_tiles(net, device, x_t, origins, tile, k: int) -> np.ndarray:
    """(B, K + S, *tile) float32 of the tiles of ``x_t`` (C, *spatial, on the device) at ``origins``:
    the softmax over the ``k`` class outputs, then the sigmoid of the S split outputs."""
    batch = torch.stack([x_t[(slice(None),) + tuple(slice(o, o + t) for o, t in zip(origin, tile))]
                         for origin in origins])
    batch = batch.contiguous(memory_format=memory_format(device, batch.ndim - 2))
    with torch.inference_mode(), autocast(device):
        logits = net(batch).float()
        return torch.cat([torch.softmax(logits[:, :k], dim=1), torch.sigmoid(logits[:, k:])], 1).cpu().numpy()


def block_grid(h: int, w: int, block_size: int, multiple: int) -> list[tuple[int, int, int, int]]:
    """Blocks (y0, y1, x0, x1) of at most ``block_size`` (a multiple of ``multiple``) covering (h, w)."""
    block = max(multiple, block_size // multiple * multiple)
    return [(y, min(y + block, h), x, min(x + block, w))
            for y in range(0, h, block) for x in range(0, w, block)]


def predict_block(model, chw, block, conversion, *, halo: int = DEFAULT_OVERLAP,
                  tile_size: int = DEFAULT_TILE, batch_size: int = 4, scale: float = 1.0) -> np.ndarray:
    """Semantic labels (..., y1-y0, x1-x0) uint8 of one (Y, X) block of a (C, [Z,] H, W) array-like.

    The block is read with a ``halo`` of context from its neighbours (none past the
    image border, where tiles are mirrored as usual), so blocks join without seams.
    Volumes are read with all their planes.
    """
    events = _iter_block(model, chw, block, conversion, halo, tile_size, batch_size, scale)
    while True:
        try:
            next(events)
        except StopIteration as stop:
            return stop.value[0]


def _block_with_halo(shape, block, halo):
    """The (y0, y1, x0, x1) region read for ``block``: the block plus ``halo``, inside the image."""
    h, w = shape[-2:]
    y0, y1, x0, x1 = block
    return max(y0 - halo, 0), min(y1 + halo, h), max(x0 - halo, 0), min(x1 + halo, w)


def _iter_block(model, chw, block, conversion, halo, tile_size, batch_size, scale=1.0):
    """Generator of TileProgress; returns (semantic labels, split output as uint8 0..255 or None, class
    probabilities (K, ...) float32) of the block."""
    y0, y1, x0, x1 = block
    ey0, ey1, ex0, ex1 = _block_with_halo(chw.shape, block, halo)
    sub = convert.normalize(chw[..., ey0:ey1, ex0:ex1], conversion)
    maps = yield from _iter_tiles(model, sub, tile_size, halo, batch_size, scale)
    from ...instances.semantic import semantic_labels  # numpy only: scikit-image is for instances

    inner = maps[..., y0 - ey0:y1 - ey0, x0 - ex0:x1 - ex0]
    k = model.config.n_outputs
    split = np.rint(inner[k] * 255).astype(np.uint8) if inner.shape[0] > k else None
    return semantic_labels(inner[:k]), split, inner[:k]


def block_side(model, n_planes: int, block_size: int) -> int:
    """(Y, X) block side for prediction: ``block_size`` for planes; for volumes (read with
    all ``n_planes`` planes) smaller, so a block holds about as many voxels."""
    if model.config.spatial_dims == 2:
        return block_size
    return max(128, int(block_size / np.sqrt(max(n_planes, 1))))


def iter_predict_labels(model: SegmentationModel, chw, out=None, *, block_size: int = 2048,
                        tile_size: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                        batch_size: int = 4, conversion=None, split_out=None, on_probabilities=None,
                        scale: float = 1.0):
    """Yield TileProgress events, then LabelsDone(out) with semantic labels (H, W) (or (Z, H, W)).

    chw: one plane (a volume for 3D models), channels first, (C, *spatial) raw pixels (numpy,
    zarr or dask: only one (Y, X) block plus its halo is read and normalised at a time). out: an array
    of the labels' shape to write into (e.g. a zarr array; a new uint8 numpy array when
    None). split_out: an array of the same shape for the split output, uint8 0..255 (the
    instance step's learned split), or None. on_probabilities: None, or called with ((y0, y1, x0, x1),
    the class probabilities (K, ...) float32 of that block) for each block, e.g. to keep a map made
    from them (``stacks``: the regions to check). scale: as ``iter_predict``; blocks and halos are
    measured at the network's scale (a block holds as many network pixels, a halo as much context).
    Peak memory is one block of probabilities, ~(K+2) * (block_size + 2 * overlap)^2 * 4 bytes for planes.
    """
    cfg = model.config
    if conversion is None:
        conversion = convert.conversion_for(chw, cfg)
    spatial = chw.shape[1:]
    if out is None:
        out = np.zeros(spatial, np.uint8 if cfg.n_outputs <= 256 else np.uint16)
    multiple = model.net.size_multiple
    scale = scale if cfg.spatial_dims == 2 else 1.0
    halo = -(-int(np.ceil(overlap / min(scale, 1.0))) // multiple) * multiple
    h, w = spatial[-2:]
    side = block_side(model, spatial[0], int(block_size / max(scale, 1.0)))
    blocks = block_grid(h, w, side, multiple)
    tiles, overlaps = tile_plan(model, tile_size, halo)
    totals = []
    for block in blocks:
        ey0, ey1, ex0, ex1 = _block_with_halo(spatial, block, halo)
        region = (*spatial[:-2], ey1 - ey0, ex1 - ex0)
        if scale != 1.0:
            region = tuple(max(1, round(n * scale)) for n in region)
        totals.append(len(_tile_geometry(region, tiles, overlaps, model.net.size_multiples)[2]))
    done = 0
    for block, n in zip(blocks, totals):
        events = _iter_block(model, chw, block, conversion, halo, tile_size, batch_size, scale)
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                labels, split, probabilities = stop.value
                break
            yield TileProgress(done + event.done, sum(totals))
        y0, y1, x0, x1 = block
        out[..., y0:y1, x0:x1] = labels
        if split_out is not None and split is not None:
            split_out[..., y0:y1, x0:x1] = split
        if on_probabilities is not None:
            on_probabilities(block, probabilities)
        done += n
    yield LabelsDone(out)


def _accumulate(acc, weight, probs, origin, overlaps):
    """Add one tile's window-weighted probabilities into the accumulators (in place)."""
    spatial = acc.shape[1:]
    tile = probs.shape[1:]
    windows = [blend_window(t, o, s > 0, s + t < n) for t, o, s, n in zip(tile, overlaps, origin, spatial)]
    valid = [min(t, n - s) for t, s, n in zip(tile, origin, spatial)]
    win = functools.reduce(np.multiply.outer, [w[:v] for w, v in zip(windows, valid)])
    region = tuple(slice(s, s + v) for s, v in zip(origin, valid))
    acc[(slice(None),) + region] += probs[(slice(None),) + tuple(slice(0, v) for v in valid)] * win
    weight[region] += win


def predict_probabilities(model: SegmentationModel, image, axes: str | None = None, **kwargs) -> np.ndarray:
    """(n_outputs, H, W) float32 class probabilities; see ``predict_maps``."""
    return predict_maps(model, image, axes, **kwargs).probabilities


def predict_maps(model: SegmentationModel, image, axes: str | None = None, **kwargs) -> PredictionDone:
    """The class probabilities and the split output of ``image``, one plane (volume for 3D models) in
    ``axes`` (None: read by the one rule, ``layout.guess_axes``, with the model's channels; a
    channels-first array: "CYX", "CZYX"); other arguments as ``iter_predict``."""
    found = layout.resolve(np.shape(image), axes, model.config)
    if not found.single:
        raise UserInputError(f"an image of shape {tuple(np.shape(image))} reads as {found.axes}, a stack; "
                             "predict one plane at a time, or a stack with pipeline.predict_image")
    for event in iter_predict(model, layout.plane(image, found.axes, (), found.spatial), **kwargs):
        if isinstance(event, PredictionDone):
            return event
    raise RuntimeError("prediction ended without a result")
