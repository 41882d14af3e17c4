"""The holes of a class mask over a plane too large to fill at once, found tile by tile.

A hole is a connected component of the background (face-connected, as in scipy's
``binary_fill_holes``) that does not reach the image border. Whether a background region
seen in one window is a hole can depend on pixels far outside it (a ring larger than the
window), so ``HoleMap`` labels the background of the whole plane tile by tile
(``components.TiledComponents``) and remembers which components reach the border.
"""

from __future__ import annotations

import numpy as np

from .components import TiledComponents


class HoleMap:
    """Holes of ``semantic == k`` over tiles (tuples of slices that partition the plane)."""

    def __init__(self, semantic, k: int, tiles: list[tuple]):
        shape = tuple(semantic.shape)
        self.background = TiledComponents(lambda window: np.asarray(semantic[window]) != k, shape, tiles)
        self.is_hole = ~self.background.at_border
        self.is_hole[0] = False  # not background

    def holes(self, window: tuple) -> np.ndarray:
        """bool mask of the holes in ``window`` (slices)."""
        return self.background.lookup(window, self.is_hole)
