"""Prediction of stacks and of images larger than memory, locally or on a dask cluster.

``iter_predict_stack`` walks the planes of an n-D image (see ``axes``) and
predicts each block by block (``predict.iter_predict_labels``) into an output
array, typically a zarr store on disk: memory stays bounded by one block.

``labels_dask`` builds the same computation as a dask graph (``map_overlap``: each
chunk is read with a halo of ``overlap`` pixels from its neighbours, predicted,
and trimmed), so ``to_zarr`` can run it on a dask.distributed cluster. The model
travels to the workers as a plain dict of tensors and is rebuilt once per worker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial

import numpy as np

from . import axes as ax
from . import data, predict
from .errors import UserInputError


@dataclass
class PlaneDone:
    """Plane ``index`` (indices along the stack axes) is written; ``done`` of ``total`` planes.

    classes: with instances, the class of each object id 1..N of this plane.
    """

    index: tuple
    done: int
    total: int
    classes: np.ndarray | None = None


class _PlaneWriter:
    """Slice assignment into one (Y, X) plane (or (Z, Y, X) volume) of an n-D labels array
    (numpy or zarr); an index may start with ``...``, as in ``writer[..., y0:y1, x0:x1]``."""

    def __init__(self, out, key: tuple):
        self.out, self.key = out, key
        self.free = [i for i, k in enumerate(key) if isinstance(k, slice)]

    @property
    def shape(self) -> tuple:
        return tuple(self.out.shape[i] for i in self.free)

    def _key(self, index) -> tuple:
        index = index if isinstance(index, tuple) else (index,)
        if index and index[0] is Ellipsis:
            index = (slice(None),) * (len(self.free) - len(index) + 1) + index[1:]
        key = list(self.key)
        for i, k in zip(self.free, index):
            key[i] = k
        return tuple(key)

    def __getitem__(self, index):
        return self.out[self._key(index)]

    def __setitem__(self, index, value):
        self.out[self._key(index)] = value


def iter_predict_stack(model, image, axes: str, out=None, *, instances: bool = False, min_size: int = 30,
                       block_size: int = 2048, tile_size: int = predict.DEFAULT_TILE, batch_size: int = 4):
    """Predict every plane of ``image`` (layout ``axes``) into ``out``; yield progress.

    Yields predict.TileProgress (within the current plane), PlaneDone after each
    plane, then predict.LabelsDone(out). out: labels array of shape
    ``axes.labels_shape(image.shape, axes)`` (a new uint8/uint32 numpy array when None).
    With ``instances`` each plane's objects are numbered 1..N within that plane.
    3D models walk volumes (one per T) instead of planes; their instances are 3D objects.
    """
    axes = ax.check_axes(axes, np.shape(image))
    cfg = model.config
    spatial = ax.spatial_of(cfg)
    shape = ax.labels_shape(np.shape(image), axes)
    if out is None:
        out = np.zeros(shape, np.uint32 if instances else np.uint8)
    elif tuple(out.shape) != shape:
        raise UserInputError(f"the output has shape {tuple(out.shape)} but the labels need {shape}")
    planes = ax.plane_indices(np.shape(image), axes, spatial)
    for i, index in enumerate(planes):
        key = ax.label_plane_key(axes, index, spatial)
        view = ax.plane(image, axes, index, cfg.channel_axis, spatial)
        # (the plane's shape from the writer: out[key] of a zarr output reads the plane)
        target = _semantic_plane(_PlaneWriter(out, key).shape, out) if instances else _PlaneWriter(out, key)
        for event in predict.iter_predict_labels(model, view, target, block_size=block_size,
                                                 tile_size=tile_size, batch_size=batch_size):
            if isinstance(event, predict.TileProgress):
                yield event
        classes = None
        if instances:
            from ._memory import release_freed_memory
            from .instances import instances_from_semantic

            release_freed_memory()  # the prediction's buffers, before the instance step's

            spacing = cfg.voxel_size if cfg.spatial_dims == 3 else None
            # written where they go, a block at a time: no second uint32 plane in memory
            plane = out[key] if isinstance(out, np.ndarray) else _PlaneWriter(out, key)
            classes = instances_from_semantic(target, cfg.n_classes, min_size=min_size, spacing=spacing,
                                              out=plane).classes
        yield PlaneDone(index, i + 1, len(planes), classes)
    yield predict.LabelsDone(out)


def _semantic_plane(shape: tuple, out):
    """Where a plane's semantic labels wait for the instance step: a uint8 numpy array, or, when
    the output is not in memory either, a compressed in-memory zarr array (a few percent of a
    byte a pixel: a 20000^2 plane is 400 MB as numpy)."""
    if isinstance(out, np.ndarray):
        return np.zeros(shape, np.uint8)
    import zarr

    return zarr.zeros(shape=shape, chunks=(1024,) * len(shape) if len(shape) == 2 else (8, 256, 256), dtype="u1")


def plane_value_ranges(image, axes: str, model) -> np.ndarray:
    """Per-plane (per-volume for 3D models) normalisation ranges (n, C, 2), as each would get alone."""
    cfg = model.config
    spatial = ax.spatial_of(cfg)
    rows = []
    for index in ax.plane_indices(np.shape(image), axes, spatial):
        chw = data.to_channels_first(ax.plane(image, axes, index, cfg.channel_axis, spatial),
                                     cfg.channel_axis, cfg.spatial_dims)
        rows.append(data.percentile_range(chw, model.config.norm_percentiles))
    return np.stack(rows)


def labels_dask(model, image, axes: str, *, block_size: int = 2048, overlap: int = predict.DEFAULT_OVERLAP,
                tile_size: int = predict.DEFAULT_TILE):
    """A lazy dask array of semantic labels (uint8), layout ``axes.labels_axes(axes)``.

    image: numpy, zarr or dask array in layout ``axes``. Nothing is computed until
    the result is stored (``da.to_zarr``) or computed, on whatever scheduler is active.
    """
    import dask.array as da

    from . import io

    axes = ax.check_axes(axes, np.shape(image))
    arr = data.as_array(image)
    if isinstance(arr, np.ndarray):
        arr = da.from_array(arr)
    cfg = model.config
    ranges = plane_value_ranges(arr, axes, model)
    spatial = list(ax.spatial_of(cfg))
    stack = list(ax.stack_axes(axes, "".join(spatial)))
    order = stack + (["C"] if "C" in axes else []) + spatial
    arr = arr.transpose([axes.index(a) for a in order])
    if "C" not in axes:
        arr = arr[(Ellipsis, None) + (slice(None),) * len(spatial)]
    n_channels = arr.shape[len(stack)]
    if n_channels != cfg.in_channels:
        raise UserInputError(f"the image has {n_channels} channel(s) but the model was trained on "
                             f"{cfg.in_channels}; check --axes or use another model")
    n = len(stack)
    multiple = model.net.size_multiple
    side = predict.block_side(model, arr.shape[-3], block_size)
    block = max(multiple, side // multiple * multiple)
    halo = -(-overlap // multiple) * multiple
    # one chunk: one plane (volume) of the stack, all channels (and planes), a (Y, X) block
    arr = arr.rechunk({**{i: 1 for i in range(arr.ndim - 2)}, n: -1, **{i: -1 for i in range(n + 1, arr.ndim - 2)},
                       arr.ndim - 2: block, arr.ndim - 1: block})
    blob = io.model_to_dict(model)
    blob["_cache_key"] = uuid.uuid4().hex
    func = partial(_predict_chunk, blob=blob, ranges=ranges.reshape(*arr.shape[:n], *ranges.shape[-2:]),
                   halo=halo, tile_size=tile_size, n_stack=n)
    # a halo only where a neighbouring chunk exists, never deeper than the image
    yx = (arr.ndim - 2, arr.ndim - 1)
    depth = {i: min(halo, arr.shape[i]) if len(arr.chunks[i]) > 1 and i in yx else 0 for i in range(arr.ndim)}
    labels = arr.map_overlap(func, depth=depth, boundary="none", trim=True, dtype=np.uint8)
    labels = labels[(slice(None),) * n + (0,)]
    lab_axes = stack + spatial
    target = ax.labels_axes(axes)
    return labels.transpose([lab_axes.index(a) for a in target])


_WORKER_MODELS: dict = {}


def _predict_chunk(block: np.ndarray, *, blob, ranges, halo, tile_size, n_stack, block_info=None):
    """One chunk (1, ..., C, [Z,] y, x) with its halo -> labels broadcast to the same shape, uint8."""
    from . import io

    key = blob["_cache_key"]
    if key not in _WORKER_MODELS:
        _WORKER_MODELS.clear()
        blob = {k: v for k, v in blob.items() if k != "_cache_key"}
        _WORKER_MODELS[key] = io.model_from_dict(blob)
    model = _WORKER_MODELS[key]
    location = block_info[0]["chunk-location"][:n_stack] if block_info else (0,) * n_stack
    value_range = ranges[tuple(location)]
    chw = block.reshape(block.shape[n_stack:])
    labels = predict.predict_block(model, chw, (0, chw.shape[-2], 0, chw.shape[-1]), value_range,
                                   halo=halo, tile_size=tile_size)
    return np.ascontiguousarray(np.broadcast_to(labels, block.shape))
