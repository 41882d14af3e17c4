"""Connected components of a mask over a plane too large to label at once, found tile by tile.

Each tile is labelled together with one more pixel on its high side of every axis, so
every pair of neighbouring pixels, whichever tiles they lie in, is seen whole by one
tile's labelling; the labels that meet in those extra pixels are joined (a sparse
graph's connected components). The per-pixel labels wait in a compressed in-memory
zarr array (a few percent of 4 bytes a pixel), the joining is a lookup table.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


class TiledComponents:
    """The components of a mask given window by window, over tiles that partition the plane.

    mask_of(window) -> bool array of the window (a tuple of slices); it must give the same
    value for a pixel whichever window holds it. structure: the connectivity, as in
    ``scipy.ndimage.label`` (None: face-connected). boxes: whether to find the components' boxes.

    Components are numbered 1..``n``; ``lookup(window, table)`` maps each pixel to a value of
    its component; ``at_border[c]``: whether component c reaches the image border;
    ``boxes[c]`` (when asked for): component c's box, (ndim, 2) global (start, stop).
    """

    def __init__(self, mask_of, shape: tuple, tiles: list[tuple], structure=None, boxes: bool = False):
        import zarr

        self.shape = tuple(shape)
        side = tuple(t.stop - t.start for t in tiles[0])
        self._labels = zarr.zeros(shape=self.shape, chunks=side, dtype="i4")
        ndim = len(self.shape)
        starts, stops, extras, border = [np.zeros((1, ndim), int)], [np.zeros((1, ndim), int)], [], []
        n = 0
        for tile in tiles:
            ext = tuple(slice(t.start, min(t.stop + 1, s)) for t, s in zip(tile, self.shape))
            labels, count = ndi.label(mask_of(ext), structure)
            labels[labels > 0] += n
            core = tuple(slice(0, t.stop - t.start) for t in tile)
            self._labels[tile] = labels[core]
            for axis, t in enumerate(tile):
                for end, at in ((0, t.start == 0), (-1, t.stop == self.shape[axis])):
                    if at:  # a face of the image
                        face = np.take(labels[core], end, axis=axis)
                        border.append(face[face > 0])
            for axis, (t, e) in enumerate(zip(tile, ext)):
                if e.stop > t.stop:  # the extra slab on this axis: pixels of the next tile
                    slab = tuple(slice(t.stop, t.stop + 1) if a == axis else w for a, w in enumerate(ext))
                    extras.append((slab, np.take(labels, [-1], axis=axis)))
            if boxes:
                box_start, box_stop = _boxes(labels[core], n, count, tile)
                starts.append(box_start)
                stops.append(box_stop)
            n += count
        # the labels of a tile's extra pixels against those of the tiles the pixels belong to
        pairs = [np.zeros((2, 0), np.int64)]
        for slab, own in extras:
            theirs = np.asarray(self._labels[slab])
            both = (own > 0) & (theirs > 0)
            pairs.append(np.unique(np.stack([own[both], theirs[both]]).astype(np.int64), axis=1))
        self._component = _join(n, np.concatenate(pairs, axis=1))
        self.n = int(self._component.max())
        self.at_border = np.zeros(self.n + 1, bool)
        self.at_border[self._component[np.concatenate(border + [np.zeros(0, np.int64)])]] = True
        self.at_border[0] = False
        if boxes:
            self.boxes = _component_boxes(self._component, self.n, np.concatenate(starts), np.concatenate(stops))

    def component_at(self, point: tuple) -> int:
        """The component of the pixel at ``point`` (0: outside the mask)."""
        return int(self._component[int(self._labels[tuple(point)])])

    def lookup(self, window: tuple, table: np.ndarray) -> np.ndarray:
        """``table[c]`` for each pixel of ``window`` (slices), c its component (0: outside the mask);
        read a tile's worth of rows at a time, so that only the result is the window's size."""
        out = np.empty([w.stop - w.start for w in window], table.dtype)
        by_label = table[self._component]
        rows = self._labels.chunks[0]
        for y in range(window[0].start, window[0].stop, rows):
            band = (slice(y, min(y + rows, window[0].stop)),) + tuple(window[1:])
            out[y - window[0].start:band[0].stop - window[0].start] = by_label[np.asarray(self._labels[band])]
        return out


def _boxes(labels: np.ndarray, first: int, count: int, tile: tuple):
    """Starts and stops (count, ndim), global, of labels first+1..first+count in a tile's labels
    (a label seen only in the extra pixels gets an empty box)."""
    ndim = labels.ndim
    start = np.full((count, ndim), np.iinfo(np.int64).max // 2)
    stop = np.zeros((count, ndim), int)
    for i, box in enumerate(ndi.find_objects(labels - np.where(labels > 0, first, 0), max_label=count)):
        if box is not None:
            start[i] = [s.start + t.start for s, t in zip(box, tile)]
            stop[i] = [s.stop + t.start for s, t in zip(box, tile)]
    return start, stop


def _join(n: int, pairs: np.ndarray) -> np.ndarray:
    """(n + 1,) int64: the component of each label 1..n, numbered from 1; label 0 -> 0."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(pairs.shape[1]), (pairs[0], pairs[1])), shape=(n + 1, n + 1))
    _, component = connected_components(graph, directed=False)
    ids = np.unique(component[1:], return_inverse=True)[1] + 1 if n else np.zeros(0, np.int64)
    return np.concatenate([[0], ids]).astype(np.int64)


def _component_boxes(component: np.ndarray, n: int, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """(n + 1, ndim, 2) boxes of the components from those of their labels."""
    boxes = np.zeros((n + 1, starts.shape[1], 2), np.int64)
    lo = np.full((n + 1, starts.shape[1]), np.iinfo(np.int64).max // 2)
    hi = np.zeros((n + 1, starts.shape[1]), np.int64)
    np.minimum.at(lo, component, starts)
    np.maximum.at(hi, component, stops)
    boxes[..., 0], boxes[..., 1] = lo, hi
    boxes[0] = 0
    return boxes
