"""Object annotations: whole objects the user painted, one id per object, and what they teach.

Besides the class annotations (0 not annotated, 1 background, 2.. classes), the user can paint
whole objects: an integer image of the same shape, 0 = not painted, each object its own id. A
painted object is fully annotated foreground of its class (the class painted under it in the
class annotations, else the first class), and its pixels, with a thin ring around it, are where
the network's split output learns where objects part (``split_targets``):

- ``distance`` (the default head): each painted object's distance to its own edge, divided by its
  largest (1 at its centre, 0 at its edge), and 0 on a ``RING``-pixel ring around it and on
  annotated background. Touching objects meet in a valley of 0, whatever their shape; a ring
  pixel that is an unpainted neighbour's edge is near 0 too, so partial annotation stays right.
- ``border``: 1 within ``RING`` pixels of a painted object's edge, 0 inside it; unknown elsewhere.

Targets are float32 maps of the image's shape, ``UNKNOWN`` (-1) where nothing is taught.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from ...errors import UserInputError
from ..convention import BACKGROUND, FIRST_CLASS

UNKNOWN = -1.0
RING = 2  # pixels: the border band taught around and inside each painted object
SPLIT_HEADS = ("none", "distance", "border")


def check_objects(objects, shape) -> np.ndarray:
    """One object image, validated: int32 of ``shape`` (0 = not painted, ids >= 1)."""
    obj = np.asarray(objects)
    if obj.shape != tuple(shape):
        raise UserInputError(f"object ids have shape {obj.shape} but the image is {tuple(shape)}; paint objects "
                             "on a Labels layer of the image's shape")
    if obj.dtype == bool:
        obj = obj.astype(np.uint8)
    if obj.dtype.kind == "f":
        if not np.isfinite(obj).all() or not np.array_equal(obj, np.round(obj)):
            raise UserInputError("object ids hold fractional or NaN values; use whole numbers, 0 = no object")
    elif obj.dtype.kind not in "ui":
        raise UserInputError(f"object ids of type {obj.dtype} are not labels; use integers, 0 = no object")
    if obj.size and obj.min() < 0:
        raise UserInputError("object ids hold negative values; use 0 for no object and 1, 2, ... for objects")
    if obj.size and obj.max() > np.iinfo(np.int32).max:
        raise UserInputError("object ids are too large; number the objects 1, 2, ...")
    return obj.astype(np.int32)


def merge_into_annotations(annotations: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Class annotations with every painted object marked as foreground of its class.

    An object's class is the class most painted under it (values >= 2), else the first class.
    Objects over pixels annotated as background (1) are refused: the two annotations disagree.
    """
    ann = np.array(annotations, copy=True)
    painted = objects > 0
    if not painted.any():
        return ann
    clash = painted & (ann == BACKGROUND)
    if clash.any():
        y = np.argwhere(clash)[0]
        raise UserInputError(f"{int(clash.sum())} pixels of painted objects are annotated as background "
                             f"(label 1), e.g. at {tuple(int(v) for v in y)}; erase one of the two there")
    ids, inverse = np.unique(objects[painted], return_inverse=True)
    under = ann[painted].astype(np.int64)
    classes = np.full(len(ids), FIRST_CLASS, np.int64)
    has_class = under >= FIRST_CLASS
    if has_class.any():  # the most painted class value under each object
        counts = np.zeros((len(ids), int(under.max()) + 1), np.int64)
        np.add.at(counts, (inverse[has_class], under[has_class]), 1)
        found = counts.sum(1) > 0
        classes[found] = counts[found].argmax(1)
    ann[painted] = classes[inverse].astype(ann.dtype)
    return ann


def split_targets(objects: np.ndarray, annotations: np.ndarray, head: str, spacing=None) -> np.ndarray | None:
    """float32 targets of the split output (``UNKNOWN`` where nothing is taught), None without objects.

    objects: int ids (0 = none); annotations: the class annotations (annotated background is
    taught 0 by the ``distance`` head); spacing: per-axis pixel spacing (volumes).
    """
    painted = objects > 0
    if not painted.any() or head == "none":
        return None
    target = np.full(objects.shape, UNKNOWN, np.float32)
    normalised, absolute = _distance_to_own_edge(objects, spacing)
    ring = ndi.binary_dilation(painted, iterations=RING) & ~painted
    if head == "distance":
        target[ring | (annotations == BACKGROUND)] = 0.0
        target[painted] = normalised[painted]
    else:  # border: 1 in the band along each object's edge, 0 inside
        target[painted] = (absolute[painted] <= RING).astype(np.float32)
    return target


def _distance_to_own_edge(objects: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Per object, each pixel's distance to the object's own edge (pixels; 1 on the edge), and
    that divided by the object's largest (both 0 outside objects). Touching objects are measured
    apart: their shared edge is an edge of both."""
    normalised, absolute = np.zeros(objects.shape, np.float32), np.zeros(objects.shape, np.float32)
    for i, box in enumerate(ndi.find_objects(objects), start=1):
        if box is None:
            continue
        mask = objects[box] == i
        dist = ndi.distance_transform_edt(np.pad(mask, 1), sampling=spacing)[(slice(1, -1),) * mask.ndim]
        absolute[box][mask] = dist[mask]
        normalised[box][mask] = dist[mask] / dist[mask].max()
    return normalised, absolute


def corrected_objects(edited: np.ndarray, shown: np.ndarray) -> np.ndarray:
    """Ids (in ``edited``) of the objects the user changed in an instance prediction.

    edited: the prediction layer as the user left it; shown: as it was shown. An object counts as
    changed when any of its pixels changed (redrawn, grown, added, painted over another: merged,
    or painted with a new id into part of one: split), or when it is what remains of an object
    that lost pixels (part erased, or split off). Erased pixels themselves (now 0) are not objects.
    """
    changed = edited != shown
    touched_before = np.unique(shown[changed])
    remains = np.isin(shown, touched_before[touched_before > 0])
    ids = np.unique(np.concatenate([edited[changed], edited[remains]]))
    return ids[ids > 0]


def add_objects(objects: np.ndarray, labels: np.ndarray, ids) -> tuple[np.ndarray, int]:
    """``objects`` (painted whole objects) with the objects ``ids`` of ``labels`` painted whole, each
    a new id after the largest one there; returns (new objects, number added)."""
    ids = np.asarray(list(ids), np.int64)
    out = np.array(objects, copy=True)
    if ids.size == 0:
        return out, 0
    top = int(out.max()) if out.size else 0
    lut = np.zeros(int(max(labels.max(), ids.max())) + 1, np.int64)
    lut[ids] = top + 1 + np.arange(len(ids))
    new = lut[labels]
    needed = np.promote_types(out.dtype, np.min_scalar_type(int(new.max())))
    out = out.astype(needed, copy=False)
    out[new > 0] = new[new > 0]
    return out, len(ids)


OUTLINE_BAND = 0.1  # of the objects' typical diameter: the band along accepted outlines left unannotated


def accepted_pixels(labels: np.ndarray, area: np.ndarray, band: float = OUTLINE_BAND, unsure=()) -> np.ndarray:
    """Where an accepted prediction (``labels``: ids or classes, 0 = background; (..., Y, X), banded plane
    by plane) becomes annotations: the ``area`` (bool, the same shape) the user accepted, less a band along
    the outlines of its objects, ``band`` times their typical diameter (``size.diameter_of_foreground``)
    wide on either side, at least a pixel; 0: all of it. The outline is where the prediction is least
    sure, and taught as truth it keeps the model's misses: a cell's protrusion predicted background stays
    background, round after round (Usiigaci val, 4 rounds from ``cells`` accepting the rest: F1 0.778 ->
    0.841 with its last round below its second, 0.863 rising every round with a band of 0.1).
    unsure: ids of ``labels`` left out whole, with their band (``uncertainty.unsure_objects``)."""
    area = np.array(area, bool)
    labels = np.asarray(labels)
    if len(unsure):
        area &= ~(np.isin(labels, unsure) & (labels > 0))
    if labels.ndim > 2:
        for plane in np.ndindex(labels.shape[:-2]):
            if area[plane].any():
                area[plane] = accepted_pixels(labels[plane], area[plane], band)
        return area
    fg = labels > 0
    if band <= 0 or not fg.any() or fg.all():
        return area
    from ..prediction.size import diameter_of_foreground

    diameter = diameter_of_foreground(fg)
    width = max(1.0, band * diameter) if np.isfinite(diameter) else 1.0
    near = (ndi.distance_transform_edt(fg) <= width) & fg
    near |= (ndi.distance_transform_edt(~fg) <= width) & ~fg
    return area & ~near
