"""Chunked prediction as a dask graph, for a dask.distributed cluster (``predict --dask-scheduler``).

``labels_dask`` builds the computation of ``stacks.iter_predict_stack`` as a dask graph
(``map_overlap``: each chunk is read with a halo of ``overlap`` pixels from its neighbours,
predicted, and trimmed), so ``to_zarr`` can run it on a cluster. The model travels to the
workers as a plain dict of tensors and is rebuilt once per worker.
"""

from __future__ import annotations

import uuid
from functools import partial

import numpy as np

from .. import layout as ax
from . import predict
from .stacks import plane_conversions


def labels_dask(model, image, axes: str, *, block_size: int = 2048, overlap: int = predict.DEFAULT_OVERLAP,
                tile_size: int = predict.DEFAULT_TILE):
    """A lazy dask array of semantic labels (uint8), layout ``axes.labels_axes(axes)``.

    image: numpy, zarr or dask array in layout ``axes``. Nothing is computed until
    the result is stored (``da.to_zarr``) or computed, on whatever scheduler is active.
    """
    import dask.array as da

    from ..model import modelfile

    axes = ax.check_axes(axes, np.shape(image))
    arr = ax.as_array(image)
    if isinstance(arr, np.ndarray):
        arr = da.from_array(arr)
    cfg = model.config
    conversions = plane_conversions(arr, axes, model)
    spatial = list(ax.spatial_of(cfg))
    stack = list(ax.stack_axes(axes, "".join(spatial)))
    order = stack + (["C"] if "C" in axes else []) + spatial
    arr = arr.transpose([axes.index(a) for a in order])
    if "C" not in axes:
        arr = arr[(Ellipsis, None) + (slice(None),) * len(spatial)]
    ax.check_channels(arr.shape[len(stack)], cfg)
    n = len(stack)
    multiple = model.net.size_multiple
    side = predict.block_side(model, arr.shape[-3], block_size)
    block = max(multiple, side // multiple * multiple)
    halo = -(-overlap // multiple) * multiple
    # one chunk: one plane (volume) of the stack, all channels (and planes), a (Y, X) block
    arr = arr.rechunk({**{i: 1 for i in range(arr.ndim - 2)}, n: -1, **{i: -1 for i in range(n + 1, arr.ndim - 2)},
                       arr.ndim - 2: block, arr.ndim - 1: block})
    blob = modelfile.model_to_dict(model)
    blob["_cache_key"] = uuid.uuid4().hex
    grid = np.empty(len(conversions), object)
    grid[:] = conversions
    func = partial(_predict_chunk, blob=blob, conversions=grid.reshape(arr.shape[:n]),
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


def _predict_chunk(block: np.ndarray, *, blob, conversions, halo, tile_size, n_stack, block_info=None):
    """One chunk (1, ..., C, [Z,] y, x) with its halo -> labels broadcast to the same shape, uint8."""
    from ..model import modelfile

    key = blob["_cache_key"]
    if key not in _WORKER_MODELS:
        _WORKER_MODELS.clear()
        blob = {k: v for k, v in blob.items() if k != "_cache_key"}
        _WORKER_MODELS[key] = modelfile.model_from_dict(blob)
    model = _WORKER_MODELS[key]
    location = block_info[0]["chunk-location"][:n_stack] if block_info else (0,) * n_stack
    conversion = conversions[tuple(location)]
    chw = block.reshape(block.shape[n_stack:])
    labels = predict.predict_block(model, chw, (0, chw.shape[-2], 0, chw.shape[-1]), conversion,
                                   halo=halo, tile_size=tile_size)
    return np.ascontiguousarray(np.broadcast_to(labels, block.shape))
