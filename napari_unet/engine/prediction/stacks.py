"""Prediction of stacks and of images larger than memory.

``iter_predict_stack`` walks the planes of an n-D image (see ``layout``) and
predicts each block by block (``predict.iter_predict_labels``) into an output
array, typically a zarr store on disk: memory stays bounded by one block.
``cluster.labels_dask`` is the same computation as a dask graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from ...errors import UserInputError
from .. import convert
from .. import layout as ax
from ..model.unet import learned_split
from . import predict


@dataclass
class PlaneDone:
    """Plane ``index`` (indices along the stack axes) is written; ``done`` of ``total`` planes.

    classes: with instances, the class of each object id 1..N of this plane.
    regions: with ``suggest``, this plane's regions to check (``uncertainty.Region``), best first.
    """

    index: tuple
    done: int
    total: int
    classes: np.ndarray | None = None
    regions: list | None = None
    conversion: object = None  # how this plane's pixels were converted (``convert.Conversion``)


class PlaneWriter:
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


def iter_predict_stack(model, image, axes, out=None, *, instances: bool = False, min_size: int = 30,
                       block_size: int = 2048, tile_size: int = predict.DEFAULT_TILE, batch_size: int = 4,
                       suggest: int = 0, scale: float = 1.0):
    """Predict every plane of ``image`` (``axes``: its layout, a string or an ``layout.ImageLayout``
    read already) into ``out``; yield progress.

    Yields predict.TileProgress (within the current plane), PlaneDone after each
    plane, then predict.LabelsDone(out). out: labels array of shape
    ``axes.labels_shape(image.shape, axes)`` (a new uint8/uint32 numpy array when None).
    With ``instances`` each plane's objects are numbered 1..N within that plane, split by the
    model's learned split output when painted objects taught it one (``unet.learned_split``).
    3D models walk volumes (one per T) instead of planes; their instances are 3D objects.
    suggest: with N > 0 (2D models), each PlaneDone carries the plane's N regions to check, found in
    the same pass (a float32 plane of uncertainty is held meanwhile). scale: every plane is seen by the
    network at this scale (``pipeline.resolve_scale``), its labels written at its own size.
    """
    found = layout_of_image(image, axes, model)
    cfg = model.config
    shape = found.labels_shape
    if out is None:
        out = np.zeros(shape, np.uint32 if instances else np.uint8)
    elif tuple(out.shape) != shape:
        raise UserInputError(f"the output has shape {tuple(out.shape)} but the labels need {shape}")
    learned = learned_split(model)
    if suggest and cfg.spatial_dims == 3:
        raise UserInputError("regions to check are found plane by plane; they are not available for 3D models")
    for i, ref in enumerate(found.planes):
        key, index = ref.label_key, ref.index
        view = ax.plane(image, found.axes, index, found.spatial)
        # (the plane's shape from the writer: out[key] of a zarr output reads the plane)
        plane_shape = PlaneWriter(out, key).shape
        target = _semantic_plane(plane_shape, out) if instances else PlaneWriter(out, key)
        # the learned split output waits beside the semantic labels, as uint8, for the instance step
        split = _semantic_plane(plane_shape, out) if instances and learned else None
        uncertain = np.zeros(plane_shape, np.float32) if suggest else None
        keep = None if uncertain is None else partial(_put_margin, uncertain)
        conversion = convert.conversion_for(view, cfg)
        for event in predict.iter_predict_labels(model, view, target, block_size=block_size, tile_size=tile_size,
                                                 batch_size=batch_size, conversion=conversion, split_out=split,
                                                 on_probabilities=keep, scale=scale):
            if isinstance(event, predict.TileProgress):
                yield event
        classes = None
        if instances:
            from ...instances import instances_from_semantic
            from ...instances.memory import release_freed_memory

            release_freed_memory()  # the prediction's buffers, before the instance step's

            spacing = cfg.voxel_size if cfg.spatial_dims == 3 else None
            # written where they go, a block at a time: no second uint32 plane in memory
            plane = out[key] if isinstance(out, np.ndarray) else PlaneWriter(out, key)
            classes = instances_from_semantic(target, cfg.n_classes, min_size=min_size, spacing=spacing,
                                              out=plane, learned=split, head=cfg.split_head).classes
        regions = None
        if suggest:
            from .uncertainty import region_side, suggest_regions

            side = region_side(np.asarray(out[key]), instances)  # the plane's labels, as written
            regions = suggest_regions(uncertain, suggest, side, plane=tuple(index))
            del uncertain
        yield PlaneDone(index, i + 1, len(found.planes), classes, regions, conversion)
    yield predict.LabelsDone(out)


def _put_margin(plane: np.ndarray, block, probabilities) -> None:
    """Write the margin uncertainty of one block's probabilities into ``plane`` at block (y0, y1, x0, x1)."""
    from .uncertainty import uncertainty_map

    y0, y1, x0, x1 = block
    plane[..., y0:y1, x0:x1] = uncertainty_map(probabilities)


def _semantic_plane(shape: tuple, out):
    """Where a plane's semantic labels wait for the instance step: a uint8 numpy array, or, when
    the output is not in memory either, a compressed in-memory zarr array (a few percent of a
    byte a pixel: a 20000^2 plane is 400 MB as numpy)."""
    if isinstance(out, np.ndarray):
        return np.zeros(shape, np.uint8)
    import zarr

    return zarr.zeros(shape=shape, chunks=(1024,) * len(shape) if len(shape) == 2 else (8, 256, 256), dtype="u1")


def plane_conversions(image, axes, model) -> list:
    """Per plane (per volume for 3D models), its ``convert.Conversion``, as each would get alone."""
    found = layout_of_image(image, axes, model)
    return [convert.conversion_for(ax.plane(image, found.axes, ref.index, found.spatial), model.config)
            for ref in found.planes]


def layout_of_image(image, axes, model) -> ax.ImageLayout:
    """``axes`` if it is a layout read already, else the image's layout read with the model's (``layout.resolve``)."""
    return axes if isinstance(axes, ax.ImageLayout) else ax.resolve(np.shape(image), axes, model.config)
