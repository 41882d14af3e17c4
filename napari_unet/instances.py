"""From class probabilities to labels: semantic classes or separate object instances.

Instances: for each object class, the pixels where it is the most likely class
are filled (holes closed), touching objects are split by a watershed on the
distance to the background, seeded at distance maxima at least ``h`` pixels
high (h-maxima: robust to ragged outlines), and objects smaller than
``min_size`` pixels are dropped. Ids run 1..N over all classes; ``classes[i]``
is the class (1-based, as in semantic labels) of object ``i + 1``.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import ndimage as ndi
from skimage import measure, morphology, segmentation

from ._components import TiledComponents
from ._holes import HoleMap
from ._memory import release_freed_memory
from .hmaxima import h_maxima


@dataclass
class Instances:
    """labels: (H, W) uint32 object ids, 0 = background; classes: (N,) int, class of id i+1."""

    labels: np.ndarray
    classes: np.ndarray


def semantic_labels(probabilities: np.ndarray) -> np.ndarray:
    """(K, H, W) probabilities -> (H, W) uint8 (uint16 past 255 classes): 0 = background."""
    dtype = np.uint8 if probabilities.shape[0] <= 256 else np.uint16
    return probabilities.argmax(0).astype(dtype)


def instance_labels(probabilities: np.ndarray, *, min_size: int = 30, h: float = 1.0,
                    smooth: float = 2.0, split: bool = True) -> Instances:
    """Objects from (K, H, W) probabilities; see the module docstring.

    min_size: smallest object kept, in pixels. h: minimum depth (pixels of distance)
    of a valley between two objects for them to be split. smooth: Gaussian sigma
    (pixels) applied to the distance map before finding seeds. Defaults tuned on the
    BBBC039 train fields (instance F1 0.94 -> 0.96 against h=2, smooth=1).
    """
    return instances_from_semantic(semantic_labels(probabilities), probabilities.shape[0] - 1,
                                   min_size=min_size, h=h, smooth=smooth, split=split)


def instances_from_semantic(semantic, n_classes: int, *, min_size: int = 30, h: float = 1.0,
                            smooth: float = 2.0, split: bool = True, spacing=None, out=None) -> Instances:
    """Objects from (H, W) (or (Z, H, W)) semantic labels (0 = background, k = class k); see instance_labels.

    semantic: a numpy array, or anything numpy-style slicing reads from (a zarr array); it is
    read a window at a time. out: where to write the ids, of semantic's shape: an integer numpy
    array, or anything that takes numpy-style slicing (a zarr array, a plane of one), written a
    window at a time. It is zeroed first and returned as ``labels``; a new uint32 array when None.

    spacing: per-axis pixel spacing of volumes, e.g. a model's voxel_size (z, y, x): distances
    (and the smoothing) are then measured in units of the finest axis, so objects in stacks with
    coarse z steps are split as they are in space, not as they are in voxels.
    Memory beyond semantic and out: a window (``TILE_PIXELS`` with a margin) per core at a
    time, or the box of a cluster of touching objects larger than a window, up to
    ``LARGE_CLUSTER_PIXELS`` (a larger one, as in confluent tissue, is split a window at a
    time: ``_split_giant_part``), and the plane's background labels, compressed
    (``_holes.HoleMap``); see ``_walk_windows``.
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
    params = _SplitParams(n_classes, min_size, h, smooth, split, spacing,
                          _reach(smooth, spacing, len(shape)) if split else (0,) * len(shape))
    classes: list[int] = []
    pieces = _ObjectKeys()
    for k, region, objects, keys in _walk_windows(semantic, params):
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


TILE_PIXELS = 1024**2  # the plane is walked in tiles of about this many pixels, each read with a margin
# Per dimension: a cluster of touching objects whose window would be larger (confluent tissue)
# is split in the windows of its tiles (_split_giant_part), else whole. Splitting takes ~110
# bytes a pixel: 0.5 GiB in 2D; 1.8 GiB in 3D, where tiles (102^3) have margins of only 25
# voxels, so objects over ~20 voxels across would often be cut at tile edges.
LARGE_CLUSTER_PIXELS = {2: 2048**2, 3: 256**3}


@dataclass(frozen=True)
class _SplitParams:
    n_classes: int
    min_size: int
    h: float
    smooth: float
    split: bool
    spacing: np.ndarray | None
    reach: tuple  # per axis, pixels: how far one object's split looks (0: split=False)


def _walk_windows(semantic, p: _SplitParams):
    """Yield (class k, region: global slices, objects: int32 ids 1..N in the region, keys) for every cluster once.

    keys is None where the objects are whole, else those of ``_split_giant_part``.

    A cluster is a connected component of the class mask (holes filled) grown by ``reach``:
    objects closer than twice the reach. Its split depends only on the mask inside its box,
    so it gives the same objects from any window that holds it whole (tested against the
    whole plane at once). Each tile of the plane is read with a margin and splits the
    clusters that lie in the window's exact zone and whose first pixel (raster order) lies
    in the tile; a cluster that reaches the margin (chains of nuclei) is split afterwards in a
    window grown around it (``_find_large_cluster``), once. A cluster whose window would be
    larger than ``LARGE_CLUSTER_PIXELS`` (confluent tissue: 8192^2 of touching nuclei took
    9.0 GiB whole) is split in the windows of its tiles instead (``_split_giant_part``).
    """
    shape = tuple(semantic.shape)
    side = max(1, round(TILE_PIXELS ** (1 / len(shape))))
    margin = tuple(max(side // 4, 2 * (r + 1)) for r in p.reach)
    tiles = [tuple(slice(i * side, min(i * side + side, n)) for i, n in zip(index, shape))
             for index in np.ndindex(*[-(-n // side) for n in shape])]
    fills = {k: _hole_filler(semantic, k, tiles) for k in range(1, p.n_classes + 1)}
    seeds: list[tuple] = []
    workers = min(len(tiles), os.cpu_count() or 1)
    # scipy's and scikit-image's loops release the GIL: 2 threads give 1.6x on 2 cores
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for owned, found_seeds in _map_ahead(pool, partial(_split_tile, semantic, p, fills, margin), tiles, 2 * workers):
            seeds.extend(found_seeds)
            yield from ((k, region, objects, None) for k, region, objects in owned)
        done: dict[int, list] = {}  # class -> [(box, grown mask)] of the large clusters found so far
        giants: dict[int, _GiantClusters] = {}  # class -> its clusters too large for one window
        splits: deque = deque()  # split on the pool while the next cluster is looked for
        for k, point, box in seeds:
            if any(_holds(b, m, point) for b, m in done.get(k, [])) or (k in giants and giants[k].add(point)):
                continue
            found = _find_large_cluster(semantic, p, fills[k], k, point, box, margin, side)
            if found is None:  # its window grew past LARGE_CLUSTER_PIXELS: how large is it?
                clusters = giants.setdefault(k, _GiantClusters(semantic, p, fills[k], k, tiles, margin))
                if clusters.add(point):
                    continue
                found = _find_large_cluster(semantic, p, fills[k], k, point, clusters.box_of(point), margin, side)
            region, mask, grown = found
            done.setdefault(k, []).append((region, grown))
            if mask is not None:
                splits.append((k, region, pool.submit(_split_region, mask, p, [r.start for r in region])))
            while splits and (len(splits) > workers or splits[0][2].done()):
                k_done, region_done, objects = splits.popleft()
                yield k_done, region_done, objects.result(), None
        for k, region, objects in splits:
            yield k, region, objects.result(), None
        for k, clusters in giants.items():
            split_part = partial(_split_giant_part, semantic, p, fills[k], clusters, margin)
            yield from _map_ahead(pool, split_part, clusters.tiles(), 2 * workers)


def _hole_filler(semantic, k: int, tiles: list[tuple]):
    """A function (mask of class k in a window, window) -> the mask with the plane's holes filled."""
    if len(tiles) == 1:  # the window is the plane
        return lambda mask, window: ndi.binary_fill_holes(mask)
    holes = HoleMap(semantic, k, tiles)
    return lambda mask, window: mask | holes.holes(window)


def _map_ahead(pool, fn, items, ahead: int):
    """``pool.map`` with at most ``ahead`` calls submitted and not yet consumed: bounded memory."""
    pending: deque = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _window(box: tuple, margin: tuple, shape: tuple) -> tuple:
    return tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, shape))


def _exact_zone(window: tuple, reach: tuple, shape: tuple) -> tuple:
    """Where a cluster of a window's mask is one of the whole plane: per axis (lo, hi), window coordinates.

    The grown mask is that of the plane farther than ``reach`` from a cut edge of the window
    (an image edge is no cut); a component whose pixels and their neighbours lie in that zone
    is therefore a whole component of the plane's."""
    return tuple((0 if w.start == 0 else r + 1, (w.stop - w.start) - (0 if w.stop == n else r + 1))
                 for w, r, n in zip(window, reach, shape))


def _clusters(semantic, p: _SplitParams, fill, window: tuple, k: int):
    """Class k's mask (holes filled) in ``window`` and its clusters: (mask, labels int32, boxes) or None."""
    mask = np.asarray(semantic[window]) == k
    if not mask.any():
        return None
    mask = fill(mask, window)  # the holes of the plane: a ring larger than the window holds one
    grown = ndi.maximum_filter(mask, size=[2 * r + 1 for r in p.reach]) if any(p.reach) else mask
    labels, _ = ndi.label(grown, structure=np.ones((3,) * mask.ndim, bool))
    return mask, labels, ndi.find_objects(labels)


def _first_pixel(labels: np.ndarray, i: int, box: tuple) -> tuple:
    """The first pixel of component i (raster order), in the coordinates of ``labels``."""
    slab = labels[(box[0].start,) + box[1:]] == i
    rest = np.unravel_index(int(np.argmax(slab)), slab.shape)
    return (box[0].start,) + tuple(int(r) + s.start for r, s in zip(rest, box[1:]))


def _split_tile(semantic, p: _SplitParams, fills: dict, margin: tuple, tile: tuple):
    """Split the clusters a tile owns; return ([(k, region, objects)], [(k, point, box)] seeds of large ones).

    A seed is the first pixel of a part of a cluster that reaches the window's margin, when it
    lies in the tile, with the box of that part (global coordinates)."""
    shape = tuple(semantic.shape)
    window = _window(tile, margin, shape)
    offset = [w.start for w in window]
    zone = _exact_zone(window, p.reach, shape)
    core = tuple(slice(t.start - o, t.stop - o) for t, o in zip(tile, offset))
    owned_results, seeds = [], []
    for k in range(1, p.n_classes + 1):
        found = _clusters(semantic, p, fills[k], window, k)
        if found is None:
            continue
        mask, labels, boxes = found
        owned = []
        for i, box in enumerate(boxes, start=1):
            first = _first_pixel(labels, i, box)
            # the cluster's first pixel in the plane is the first of one of its parts in this
            # window; a part that starts outside the tile leaves the cluster to another tile
            if not all(c.start <= x < c.stop for x, c in zip(first, core)):
                continue
            if all(lo <= s.start and s.stop <= hi for s, (lo, hi) in zip(box, zone)):
                owned.append(i)  # whole: the plane's cluster
            else:
                seeds.append((k, tuple(x + o for x, o in zip(first, offset)),
                              tuple(slice(s.start + o, s.stop + o) for s, o in zip(box, offset))))
        if owned:
            region = tuple(slice(min(boxes[i - 1][a].start for i in owned), max(boxes[i - 1][a].stop for i in owned))
                           for a in range(mask.ndim))
            keep = np.zeros(len(boxes) + 1, bool)
            keep[owned] = True
            origin = [s.start + o for s, o in zip(region, offset)]
            objects = _split_region(mask[region] & keep[labels[region]], p, origin)
            if objects.max() > 0:
                owned_results.append((k, tuple(slice(s.start + o, s.stop + o) for s, o in zip(region, offset)),
                                      objects))
    return owned_results, seeds


def _holds(box: tuple, grown: np.ndarray, point: tuple) -> bool:
    if not all(s.start <= x < s.stop for x, s in zip(point, box)):
        return False
    return bool(grown[tuple(x - s.start for x, s in zip(point, box))])


def _find_large_cluster(semantic, p: _SplitParams, fill, k: int, point: tuple, box: tuple, margin: tuple, side: int):
    """The cluster of class k through ``point``, in a window grown until it holds it whole.

    Returns None when the window would grow past ``LARGE_CLUSTER_PIXELS``, else (region, mask,
    grown): region, its box (global slices); mask: its objects' pixels in the box, to split, or
    None when the tile of its first pixel split it already (it lay whole in that tile's window);
    grown: its pixels in the box, to recognise it from its other seeds."""
    shape = tuple(semantic.shape)
    window = _window(box, margin, shape)
    while True:
        if np.prod([w.stop - w.start for w in window]) > LARGE_CLUSTER_PIXELS[len(shape)]:
            return None
        mask, labels, boxes = _clusters(semantic, p, fill, window, k)
        offset = [w.start for w in window]
        i = int(labels[tuple(x - o for x, o in zip(point, offset))])
        local = boxes[i - 1]
        zone = _exact_zone(window, p.reach, shape)
        low = [s.start < lo for s, (lo, _) in zip(local, zone)]
        high = [s.stop > hi for s, (_, hi) in zip(local, zone)]
        if not any(low + high):
            break
        # extend the window by its length beyond each side the cluster reaches
        window = tuple(slice(max(0, w.start - (w.stop - w.start) * lo), min(n, w.stop + (w.stop - w.start) * hi))
                       for w, lo, hi, n in zip(window, low, high, shape))
    region = tuple(slice(s.start + o, s.stop + o) for s, o in zip(local, offset))
    grown = labels[local] == i
    first = tuple(x + o for x, o in zip(_first_pixel(labels, i, local), offset))
    tile = tuple(slice(x // side * side, min(x // side * side + side, n)) for x, n in zip(first, shape))
    owner_window = _window(tile, margin, shape)
    owner_zone = _exact_zone(owner_window, p.reach, shape)
    if all(lo <= s.start - w.start and s.stop - w.start <= hi
           for s, w, (lo, hi) in zip(region, owner_window, owner_zone)):
        return region, None, grown  # whole in its owner's window: split there
    return region, mask[local] & grown, grown


class _GiantClusters:
    """Class k's clusters whose window (box and margin) is larger than ``LARGE_CLUSTER_PIXELS``.

    They are found on a map of all of class k's clusters over the plane (the grown mask's
    components, ``_components.TiledComponents``), built the first time a cluster outgrows
    the limit. ``add(point)`` marks the cluster through ``point`` as giant if it is one."""

    def __init__(self, semantic, p: _SplitParams, fill, k: int, tiles: list[tuple], margin: tuple):
        self.k, self.margin, self.shape, self._tiles = k, margin, tuple(semantic.shape), tiles
        structure = np.ones((3,) * len(self.shape), bool)  # the connectivity of _clusters
        self.map = TiledComponents(partial(_grown_mask, semantic, p, fill, k), self.shape, tiles, structure,
                                   boxes=True)
        self.is_giant = np.zeros(self.map.n + 1, bool)

    def box_of(self, point: tuple) -> tuple:
        return tuple(slice(int(a), int(b)) for a, b in self.map.boxes[self.map.component_at(point)])

    def add(self, point: tuple) -> bool:
        """Whether the cluster through ``point`` is too large for one window (then it is remembered)."""
        window = _window(self.box_of(point), self.margin, self.shape)
        if np.prod([w.stop - w.start for w in window]) <= LARGE_CLUSTER_PIXELS[len(self.shape)]:
            return False
        self.is_giant[self.map.component_at(point)] = True
        return True

    def mask(self, window: tuple) -> np.ndarray:
        """bool: the pixels of ``window`` in giant clusters."""
        return self.map.lookup(window, self.is_giant)

    def tiles(self) -> list[tuple]:
        """The tiles that hold pixels of giant clusters (or may: those their boxes overlap)."""
        boxes = self.map.boxes[self.is_giant]
        return [t for t in self._tiles
                if any(all(s.start < b[1] and b[0] < s.stop for s, b in zip(t, box)) for box in boxes)]


def _grown_mask(semantic, p: _SplitParams, fill, k: int, window: tuple) -> np.ndarray:
    """Class k's mask (holes filled) grown by the reach in ``window``, as over the whole plane
    (read with a margin of the reach)."""
    read = _window(window, p.reach, tuple(semantic.shape))
    mask = fill(np.asarray(semantic[read]) == k, read)
    grown = ndi.maximum_filter(mask, size=[2 * r + 1 for r in p.reach]) if any(p.reach) else mask
    return grown[tuple(slice(w.start - r.start, w.stop - r.start) for w, r in zip(window, read))]


def _split_giant_part(semantic, p: _SplitParams, fill, clusters: _GiantClusters, margin: tuple, tile: tuple):
    """Split the giant clusters in a tile's window; return (k, tile, objects in the tile, their keys).

    Each tile labels its own pixels, with the objects of its window's split; an object's key
    is its first pixel in the window (raster order, as an index into the plane), which joins
    the parts of an object that lies in several tiles. Where an object's split is the same in
    the windows of its tiles (the background nearest to it lies inside them: objects well
    under the margin, 256 px, across), they give it the same key; a larger one may be cut at
    tile edges (tested: a disc of 140 px among nuclei, with margins of 32 px).

    objects: int32 ids 1..N in the tile; keys: (N + 1,) int64 (keys[0] unused)."""
    shape = tuple(semantic.shape)
    window = _window(tile, margin, shape)
    offset = [w.start for w in window]
    mask = fill(np.asarray(semantic[window]) == clusters.k, window) & clusters.mask(window)
    objects = _split_region(mask, p, offset)
    ids, first = np.unique(objects, return_index=True)  # raster order: each object's first pixel
    at = np.unravel_index(first, objects.shape)
    keys = np.ravel_multi_index(tuple(a + o for a, o in zip(at, offset)), shape).astype(np.int64)
    in_tile = objects[tuple(slice(t.start - o, t.stop - o) for t, o in zip(tile, offset))]
    present, local = np.unique(in_tile, return_inverse=True)  # present[0] == 0 where background
    if present[0] != 0:
        present, local = np.concatenate([[0], present]), local + 1
    return clusters.k, tile, local.reshape(in_tile.shape).astype(np.int32), keys[np.searchsorted(ids, present)]


class _ObjectKeys:
    """Ids given to the pieces of objects by their keys (``_split_giant_part``), sorted by key."""

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


def _tie_break(shape: tuple, origin) -> np.ndarray:
    """(shape) float64: a tilt of ~1e-11 px a pixel along each axis, fixed by the pixel's place in the plane.

    The watershed floods pixels of equal height in the order it reached them, and that order
    depends on everything else it flooded: the whole plane or a window of it. A tilt too small
    to change any other decision (under 1e-5 px across 10^5 pixels) makes every two pixels
    unequal, so any window gives the plane's object boundaries."""
    origin = origin if origin is not None else (0,) * len(shape)
    axes = np.ogrid[tuple(slice(o, o + n) for o, n in zip(origin, shape))]
    steps = (1.0, 0.7548776662466927, 0.5698402909980532)  # no small integer combination of them is 0
    return sum(a * (s * 1e-11) for a, s in zip(axes, steps))  # broadcasts to the whole shape


def _reach(smooth: float, spacing, ndim: int) -> tuple[int, ...]:
    """Per axis, in pixels: how far one object's split can look (gaussian_filter's radius, + 1)."""
    sigmas = np.full(ndim, smooth, float) if spacing is None else smooth / np.asarray(spacing, float)
    return tuple(int(4.0 * s + 0.5) + 1 for s in sigmas)  # gaussian_filter's default truncate = 4


def _split_region(mask: np.ndarray, p: _SplitParams, origin=None) -> np.ndarray:
    """Binary mask (holes filled) -> labelled objects of the same shape, int32, ids 1..N consecutive.

    origin: the plane coordinates of ``mask``'s first pixel (None: zeros), for ``_tie_break``."""
    min_size, h, smooth, split, spacing = p.min_size, p.h, p.smooth, p.split, p.spacing
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    mask = morphology.remove_small_objects(mask, max_size=min_size - 1) if min_size > 1 else mask
    if split:
        distance = ndi.distance_transform_edt(mask, sampling=spacing)
        if smooth > 0:
            distance = ndi.gaussian_filter(distance, smooth if spacing is None else smooth / spacing)
        seeds = measure.label(h_maxima(distance, h) & mask)
        heights = _tie_break(mask.shape, origin)
        heights -= distance  # flood from the distance maxima
        del distance
        labels = segmentation.watershed(heights, seeds, mask=mask)
        del heights
        # a component whose maximum was lower than h gets no seed: keep it whole
        unseeded = mask & (labels == 0)
        if unseeded.any():
            extra = measure.label(unseeded)
            labels[extra > 0] = extra[extra > 0] + labels.max()
    else:
        labels = measure.label(mask)
    if min_size > 1:  # (a bool mask when there is one object: scikit-image warns on a single label)
        small = labels.max() <= 1
        kept = morphology.remove_small_objects(labels > 0 if small else labels, max_size=min_size - 1)
        labels = labels * kept if small else kept
    return segmentation.relabel_sequential(labels.astype(np.int32))[0]
