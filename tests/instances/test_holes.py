import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_unet.instances.holes import HoleMap
from tests.instances.test_components import _tiles


def _rings(shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    sem = np.zeros(shape, np.uint8)
    d2 = (yy - 45) ** 2 + (xx - 40) ** 2
    sem[(d2 <= 35**2) & (d2 > 28**2)] = 1  # a ring over many tiles: its inside is a hole
    sem[d2 <= 8**2] = 1  # with an island in it
    d2 = (yy - 45) ** 2 + (xx - 110) ** 2
    sem[(d2 <= 25**2) & (d2 > 19**2) & ~((abs(yy - 45) < 3) & (xx > 110))] = 1  # a "C": its inside is no hole
    sem[(yy - 80) ** 2 + (xx - 120) ** 2 <= 4] = 2  # another class
    return sem


@pytest.mark.parametrize("side", [7, 16, 500])
def test_holes_over_tiles_are_those_of_the_whole_plane(side):
    rng = np.random.default_rng(0)
    noise = (ndi.gaussian_filter(rng.random((90, 140)), 2) > 0.5).astype(np.uint8)
    blobs = (ndi.gaussian_filter(rng.random((12, 40, 50)), 1.5) > 0.5).astype(np.uint8)
    for sem, k in [(_rings((90, 140)), 1), (noise, 1), (noise, 0), (blobs, 1)]:
        expected = ndi.binary_fill_holes(sem == k) & (sem != k)
        tiles = _tiles(sem.shape, side)
        holes = HoleMap(sem, k, tiles)
        np.testing.assert_array_equal(holes.holes(tuple(slice(0, n) for n in sem.shape)), expected)
        window = tuple(slice(n // 4, n - n // 5) for n in sem.shape)
        np.testing.assert_array_equal(holes.holes(window), expected[window])
    assert expected.sum() > 0  # the comparisons are not between empty masks
    ring = _rings((90, 140))
    row = HoleMap(ring, 1, _tiles(ring.shape, side)).holes((slice(45, 46), slice(0, 140)))[0]
    assert row[:80].sum() == 57 - 17 and row[80:].sum() == 0  # the ring's inside but its island; not the C's
