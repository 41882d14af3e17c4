"""The holes of a class mask over a plane too large to fill at once, found tile by tile.

A hole is a connected component of the background (face-connected, as in scipy's
``binary_fill_holes``) that does not reach the image border. Whether a background region
seen in one window is a hole can depend on pixels far outside it (a ring larger than the
window), so ``HoleMap`` labels the background of each tile, joins the labels that meet
across tile faces (a graph's connected components) and remembers which reach the border;
its labels are kept in a compressed in-memory zarr array (a few percent of 4 bytes a pixel).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


class HoleMap:
    """Holes of ``semantic == k`` over tiles (tuples of slices that partition the plane)."""

    def __init__(self, semantic, k: int, tiles: list[tuple]):
        import zarr

        shape = tuple(semantic.shape)
        side = tuple(t.stop - t.start for t in tiles[0])
        self.ids = zarr.zeros(shape=shape, chunks=side, dtype="i4")
        faces: dict[tuple, np.ndarray] = {}  # (tile start, axis, 0 first / 1 last slab) -> global ids
        border: list[np.ndarray] = []
        n = 0
        for tile in tiles:
            labels, count = ndi.label(np.asarray(semantic[tile]) != k)
            labels[labels > 0] += n
            n += count
            self.ids[tile] = labels
            start = tuple(t.start for t in tile)
            for axis, t in enumerate(tile):
                for end, at_border in ((0, t.start == 0), (1, t.stop == shape[axis])):
                    slab = np.take(labels, -end, axis=axis)
                    (border.append(slab[slab > 0]) if at_border else faces.__setitem__((start, axis, end), slab))
        self.outside = _reaching_border(n, _face_pairs(faces, side), np.concatenate(border + [np.zeros(0, int)]))

    def holes(self, window: tuple) -> np.ndarray:
        """bool mask of the holes in ``window`` (slices), read a tile's worth of rows at a time
        (a window around a cluster the height of the plane would be 4 bytes a pixel at once)."""
        out = np.empty([w.stop - w.start for w in window], bool)
        rows = self.ids.chunks[0]
        for y in range(window[0].start, window[0].stop, rows):
            band = (slice(y, min(y + rows, window[0].stop)),) + window[1:]
            ids = np.asarray(self.ids[band])
            out[y - window[0].start:band[0].stop - window[0].start] = (ids > 0) & ~self.outside[ids]
        return out


def _face_pairs(faces: dict, side: tuple) -> np.ndarray:
    """(2, M) ids that touch across the face of two neighbouring tiles (both background)."""
    pairs = [np.zeros((2, 0), int)]
    for (start, axis, end), slab in faces.items():
        if end != 1:
            continue
        neighbour = tuple(s + side[a] if a == axis else s for a, s in enumerate(start))
        other = faces.get((neighbour, axis, 0))
        if other is not None:
            both = (slab > 0) & (other > 0)
            pairs.append(np.unique(np.stack([slab[both], other[both]]), axis=1))
    return np.concatenate(pairs, axis=1)


def _reaching_border(n: int, pairs: np.ndarray, at_border: np.ndarray) -> np.ndarray:
    """(n + 1,) bool: whether background id i is joined to one at the image border (id 0: False)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(n + 1, n + 1))
    _, component = connected_components(graph, directed=False)
    outside = np.zeros(component.max() + 1, bool)
    outside[component[at_border]] = True
    result = outside[component]
    result[0] = False
    return result
