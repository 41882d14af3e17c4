"""Walking a plane too large to split at once: tiles, their windows, and clusters larger than a window.

A cluster (touching objects) is split whole in the window of the tile that owns it, or in a
window grown around it; one too large for any window (confluent tissue) in the windows of its
tiles, its objects joined across tile edges by their first pixel. Holes are those of the
whole plane (``holes.HoleMap``). Memory: a few windows, not the plane.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
from scipy import ndimage as ndi

from .components import TiledComponents
from .holes import HoleMap
from .split import SplitParams, split_region

TILE_PIXELS = 1024**2  # the plane is walked in tiles of about this many pixels, each read with a margin
# Per dimension: a cluster of touching objects whose window would be larger (confluent tissue)
# is split in the windows of its tiles (_split_giant_part), else whole. Splitting takes ~110
# bytes a pixel: 0.5 GiB in 2D; 1.8 GiB in 3D, where tiles (102^3) have margins of only 25
# voxels, so objects over ~20 voxels across would often be cut at tile edges.
LARGE_CLUSTER_PIXELS = {2: 2048**2, 3: 256**3}


def walk_windows(semantic, p: SplitParams):
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
                splits.append((k, region, pool.submit(split_region, mask, p, [r.start for r in region])))
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


def _too_large(window: tuple) -> bool:
    """Whether a window is past ``LARGE_CLUSTER_PIXELS``: its cluster is split in pieces."""
    return np.prod([w.stop - w.start for w in window]) > LARGE_CLUSTER_PIXELS[len(window)]


def _grow(mask: np.ndarray, reach: tuple) -> np.ndarray:
    """The mask grown by ``reach`` pixels per axis: its components are the clusters."""
    return ndi.maximum_filter(mask, size=[2 * r + 1 for r in reach]) if any(reach) else mask


def _window(box: tuple, margin: tuple, shape: tuple) -> tuple:
    """``box`` (slices) widened by ``margin`` per axis, within the plane."""
    return tuple(slice(max(0, s.start - m), min(n, s.stop + m)) for s, m, n in zip(box, margin, shape))


def _exact_zone(window: tuple, reach: tuple, shape: tuple) -> tuple:
    """Where a cluster of a window's mask is one of the whole plane: per axis (lo, hi), window coordinates.

    The grown mask is that of the plane farther than ``reach`` from a cut edge of the window
    (an image edge is no cut); a component whose pixels and their neighbours lie in that zone
    is therefore a whole component of the plane's."""
    return tuple((0 if w.start == 0 else r + 1, (w.stop - w.start) - (0 if w.stop == n else r + 1))
                 for w, r, n in zip(window, reach, shape))


def _clusters(semantic, p: SplitParams, fill, window: tuple, k: int):
    """Class k's mask (holes filled) in ``window`` and its clusters: (mask, labels int32, boxes) or None."""
    mask = np.asarray(semantic[window]) == k
    if not mask.any():
        return None
    mask = fill(mask, window)  # the holes of the plane: a ring larger than the window holds one
    labels, _ = ndi.label(_grow(mask, p.reach), structure=np.ones((3,) * mask.ndim, bool))
    return mask, labels, ndi.find_objects(labels)


def _first_pixel(labels: np.ndarray, i: int, box: tuple) -> tuple:
    """The first pixel of component i (raster order), in the coordinates of ``labels``."""
    slab = labels[(box[0].start,) + box[1:]] == i
    rest = np.unravel_index(int(np.argmax(slab)), slab.shape)
    return (box[0].start,) + tuple(int(r) + s.start for r, s in zip(rest, box[1:]))


def _split_tile(semantic, p: SplitParams, fills: dict, margin: tuple, tile: tuple):
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
            objects = split_region(mask[region] & keep[labels[region]], p, origin)
            if objects.max() > 0:
                owned_results.append((k, tuple(slice(s.start + o, s.stop + o) for s, o in zip(region, offset)),
                                      objects))
    return owned_results, seeds


def _holds(box: tuple, grown: np.ndarray, point: tuple) -> bool:
    if not all(s.start <= x < s.stop for x, s in zip(point, box)):
        return False
    return bool(grown[tuple(x - s.start for x, s in zip(point, box))])


def _find_large_cluster(semantic, p: SplitParams, fill, k: int, point: tuple, box: tuple, margin: tuple, side: int):
    """The cluster of class k through ``point``, in a window grown until it holds it whole.

    Returns None when the window would grow past ``LARGE_CLUSTER_PIXELS``, else (region, mask,
    grown): region, its box (global slices); mask: its objects' pixels in the box, to split, or
    None when the tile of its first pixel split it already (it lay whole in that tile's window);
    grown: its pixels in the box, to recognise it from its other seeds."""
    shape = tuple(semantic.shape)
    window = _window(box, margin, shape)
    while True:
        if _too_large(window):
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
    components, ``components.TiledComponents``), built the first time a cluster outgrows
    the limit. ``add(point)`` marks the cluster through ``point`` as giant if it is one."""

    def __init__(self, semantic, p: SplitParams, fill, k: int, tiles: list[tuple], margin: tuple):
        self.k, self.margin, self.shape, self._tiles = k, margin, tuple(semantic.shape), tiles
        structure = np.ones((3,) * len(self.shape), bool)  # the connectivity of _clusters
        self.map = TiledComponents(partial(_grown_mask, semantic, p, fill, k), self.shape, tiles, structure,
                                   boxes=True)
        self.is_giant = np.zeros(self.map.n + 1, bool)

    def box_of(self, point: tuple) -> tuple:
        return tuple(slice(int(a), int(b)) for a, b in self.map.boxes[self.map.component_at(point)])

    def add(self, point: tuple) -> bool:
        """Whether the cluster through ``point`` is too large for one window (then it is remembered)."""
        if not _too_large(_window(self.box_of(point), self.margin, self.shape)):
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


def _grown_mask(semantic, p: SplitParams, fill, k: int, window: tuple) -> np.ndarray:
    """Class k's mask (holes filled) grown by the reach in ``window``, as over the whole plane
    (read with a margin of the reach)."""
    read = _window(window, p.reach, tuple(semantic.shape))
    grown = _grow(fill(np.asarray(semantic[read]) == k, read), p.reach)
    return grown[tuple(slice(w.start - r.start, w.stop - r.start) for w, r in zip(window, read))]


def _split_giant_part(semantic, p: SplitParams, fill, clusters: _GiantClusters, margin: tuple, tile: tuple):
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
    objects = split_region(mask, p, offset)
    ids, first = np.unique(objects, return_index=True)  # raster order: each object's first pixel
    at = np.unravel_index(first, objects.shape)
    keys = np.ravel_multi_index(tuple(a + o for a, o in zip(at, offset)), shape).astype(np.int64)
    in_tile = objects[tuple(slice(t.start - o, t.stop - o) for t, o in zip(tile, offset))]
    present, local = np.unique(in_tile, return_inverse=True)  # present[0] == 0 where background
    if present[0] != 0:
        present, local = np.concatenate([[0], present]), local + 1
    return clusters.k, tile, local.reshape(in_tile.shape).astype(np.int32), keys[np.searchsorted(ids, present)]
