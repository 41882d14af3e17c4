import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_unet.instances.components import TiledComponents


def _tiles(shape, side):
    return [tuple(slice(i * side, min(i * side + side, n)) for i, n in zip(index, shape))
            for index in np.ndindex(*[-(-n // side) for n in shape])]


def _masks():
    rng = np.random.default_rng(0)
    noise = ndi.gaussian_filter(rng.random((90, 140)), 2) > 0.5
    blobs = ndi.gaussian_filter(rng.random((12, 40, 50)), 1.5) > 0.5
    yy, xx = np.mgrid[:40, :60]
    checkers = (yy + xx) % 2 == 0  # every pixel alone face-connected, one component with corners
    diagonal = (yy == xx) | (yy == 59 - xx)  # crossing tile corners
    return [noise, blobs, checkers, diagonal]


@pytest.mark.parametrize("side", [7, 16, 500])
@pytest.mark.parametrize("full", [False, True])
def test_components_over_tiles_are_those_of_the_whole_plane(side, full):
    for mask in _masks():
        structure = np.ones((3,) * mask.ndim, bool) if full else None
        found = TiledComponents(lambda window: mask[window], mask.shape, _tiles(mask.shape, side), structure, boxes=True)
        ids = found.lookup(tuple(slice(0, n) for n in mask.shape), np.arange(found.n + 1))
        expected, n = ndi.label(mask, structure)
        assert found.n == n > 0
        np.testing.assert_array_equal(ids > 0, mask)
        pairs = np.unique(np.stack([ids[mask], expected[mask]]), axis=1)
        assert pairs.shape[1] == n  # one to one
        boxes = ndi.find_objects(expected)
        for c, label in pairs.T:
            assert [tuple(b) for b in found.boxes[c]] == [(s.start, s.stop) for s in boxes[label - 1]]
        first = np.unravel_index(np.argmax(mask), mask.shape)
        assert found.component_at(first) == ids[first] > 0


def test_lookup_reads_a_window():
    mask = _masks()[0]
    found = TiledComponents(lambda window: mask[window], mask.shape, _tiles(mask.shape, 16))
    table = np.arange(found.n + 1) * 10
    window = (slice(20, 75), slice(33, 101))
    whole = found.lookup(tuple(slice(0, n) for n in mask.shape), table)
    np.testing.assert_array_equal(found.lookup(window, table), whole[window])
