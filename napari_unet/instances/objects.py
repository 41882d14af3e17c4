"""From class probabilities to labels: semantic classes or separate object instances.

Instances: for each object class, the pixels where it is the most likely class
are filled (holes closed), touching objects are split by a watershed on the
distance to the background, seeded at distance maxima at least ``h`` pixels
high (h-maxima: robust to ragged outlines), and objects smaller than
``min_size`` pixels are dropped. Ids run 1..N over all classes; ``classes[i]``
is the class (1-based, as in semantic labels) of object ``i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .memory import release_freed_memory
from .semantic import semantic_labels  # noqa: F401 - re-exported: callers import it from here too
from .split import SplitParams, reach_of
from .windows import walk_windows

# where the learned split output seeds objects (chosen on the train fields: benchmarks/objects.py)
LEARNED_SEED_LEVEL = {"distance": 0.2, "border": 0.5}


@dataclass
class Instances:
    """labels: (H, W) uint32 object ids, 0 = background; classes: (N,) int, class of id i+1."""

    labels: np.ndarray
    classes: np.ndarray


def instance_labels(probabilities: np.ndarray, *, min_size: int = 30, h: float = 1.0,
                    smooth: float = 2.0, split: bool = True, learned=None, head: str = "distance") -> Instances:
    """Objects from (K, H, W) probabilities; see the module docstring.

    min_size: smallest object kept, in pixels. h: minimum depth (pixels of distance)
    of a valley between two objects for them to be split. smooth: Gaussian sigma
    (pixels) applied to the distance map before finding seeds. Defaults tuned on the
    BBBC039 train fields (instance F1 0.94 -> 0.96 against h=2, smooth=1).
    learned: the network's split output (H, W), float 0..1 (or uint8 0..255), when it has
    learned one from painted objects: touching objects are then split where it says (``head``:
    "distance" or "border"; see ``split``), not by the distance rule.
    """
    return instances_from_semantic(semantic_labels(probabilities), probabilities.shape[0] - 1,
                                   min_size=min_size, h=h, smooth=smooth, split=split, learned=learned, head=head)


def instances_from_semantic(semantic, n_classes: int, *, min_size: int = 30, h: float = 1.0,
                            smooth: float = 2.0, split: bool = True, spacing=None, out=None, learned=None,
                            head: str = "distance") -> Instances:
    """Objects from (H, W) (or (Z, H, W)) semantic labels (0 = background, k = class k); see instance_labels.

    semantic: a numpy array, or anything numpy-style slicing reads from (a zarr array); it is
    read a window at a time. out: where to write the ids, of semantic's shape: an integer numpy
    array, or anything that takes numpy-style slicing (a zarr array, a plane of one), written a
    window at a time. It is zeroed first and returned as ``labels``; a new uint32 array when None.

    spacing: per-axis pixel spacing of volumes, e.g. a model's voxel_size (z, y, x): distances
    (and the smoothing) are then measured in units of the finest axis, so objects in stacks with
    coarse z steps are split as they are in space, not as they are in voxels.
    learned, head: the learned split output over the plane (numpy or zarr, read a window at a
    time, like ``semantic``); see instance_labels.
    Memory beyond semantic and out: a window (``windows.TILE_PIXELS`` with a margin) per core
    at a time, or the box of a cluster of touching objects larger than a window, up to
    ``windows.LARGE_CLUSTER_PIXELS`` (a larger one, as in confluent tissue, is split a window at
    a time), and the plane's background labels, compressed; see ``windows``.
    """
    shape = tuple(semantic.shape)
    if out is None:
        out = np.zeros(shape, np.uint32)
    elif tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, the labels need {shape}")
    else:
        out[...] = 0
    if spacing is not None:
        spacing = np.asarray(spacing, float) / min(spacing)
    params = SplitParams(n_classes, min_size, h, smooth, split, spacing,
                         reach_of(smooth, spacing, len(shape)) if split else (0,) * len(shape), learned, head,
                         LEARNED_SEED_LEVEL[head])
    classes: list[int] = []
    pieces = _ObjectKeys()
    for k, region, objects, keys in walk_windows(semantic, params):
        if not objects.any():
            continue
        if keys is None:  # whole objects, new ids
            n_new = int(objects.max())
            ids = np.arange(n_new + 1) + len(classes)
        else:  # pieces of objects, some begun in other tiles
            ids, n_new = pieces.ids(keys, len(classes))
        ids[0] = 0
        found = objects > 0
        if isinstance(out, np.ndarray):
            out[region][found] = ids[objects[found]]
        else:  # read, fill in, write back (regions may overlap, never their objects)
            part = np.asarray(out[region])
            part[found] = ids[objects[found]]
            out[region] = part
        classes.extend([k] * n_new)
        release_freed_memory()
    return Instances(out, np.asarray(classes, dtype=np.int64))


class _ObjectKeys:
    """Ids given to the pieces of objects by their keys (``windows._split_giant_part``), sorted by key."""

    def __init__(self):
        self._keys = np.zeros(0, np.int64)
        self._ids = np.zeros(0, np.int64)

    def ids(self, keys: np.ndarray, n_before: int):
        """(ids for keys (keys[0] unused), count of new ones): known keys keep their ids, new keys
        get n_before + 1, + 2, ..."""
        pos = np.searchsorted(self._keys, keys)
        known = np.zeros(len(keys), bool)
        inside = pos < len(self._keys)
        known[inside] = self._keys[pos[inside]] == keys[inside]
        known[0] = False  # background
        ids = np.zeros(len(keys), np.int64)
        ids[known] = self._ids[pos[known]]
        new = ~known
        new[0] = False
        ids[new] = n_before + 1 + np.arange(new.sum())
        order = np.argsort(np.concatenate([self._keys, keys[new]]), kind="stable")
        self._keys = np.concatenate([self._keys, keys[new]])[order]
        self._ids = np.concatenate([self._ids, ids[new]])[order]
        return ids, int(new.sum())


def keep_ids(labels: np.ndarray, previous: np.ndarray, classes=None, first_new: int | None = None):
    """``labels`` renumbered so that an object keeps the id (and colour) it had in ``previous``.

    An object takes the id of the previous object it overlaps with IoU > 0.5 (at most one can);
    the others get new ids from ``first_new`` on (default: above every id of ``previous``; give the
    largest id shown anywhere + 1 when ``previous`` is a part of a larger image). labels,
    previous: int arrays of one shape (0 = background). classes: the class of each id 1..N of
    ``labels``, or None. Returns (relabelled, classes of its ids 1..M or None).
    """
    labels, previous = np.asarray(labels), np.asarray(previous)
    n_new, n_old = int(labels.max(initial=0)) + 1, int(previous.max(initial=0)) + 1
    both = (labels > 0) & (previous > 0)
    pairs = np.bincount(labels[both].astype(np.int64) * n_old + previous[both], minlength=n_new * n_old)
    inter = pairs.reshape(n_new, n_old)
    area_new, area_old = np.bincount(labels.ravel(), minlength=n_new), np.bincount(previous.ravel(), minlength=n_old)
    new_id, old_id = np.nonzero(inter)
    iou = inter[new_id, old_id] / (area_new[new_id] + area_old[old_id] - inter[new_id, old_id])
    matched = iou > 0.5
    lut = np.zeros(n_new, np.int64)
    lut[new_id[matched]] = old_id[matched]
    rest = np.setdiff1d(np.nonzero(area_new)[0], np.concatenate([[0], new_id[matched]]))
    lut[rest] = max(n_old, first_new or 0) + np.arange(len(rest))
    dtype = labels.dtype if lut.max(initial=0) <= np.iinfo(labels.dtype).max else np.uint32
    relabelled = lut[labels].astype(dtype)
    if classes is None:
        return relabelled, None
    out_classes = np.ones(int(lut.max(initial=0)), np.int64)  # ids no object has: the first class
    ids = np.arange(1, n_new)
    known = ids <= len(classes)
    out_classes[lut[ids[known]] - 1] = np.asarray(classes, np.int64)[ids[known] - 1]
    return relabelled, out_classes
