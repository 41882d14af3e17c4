"""The pipeline the CLI and the widget share."""

import numpy as np

from napari_unet.engine.prediction.pipeline import preview_pixels


def test_preview_pixels_plane_or_slab_around_it():
    stack = np.arange(2 * 10 * 4 * 5).reshape(2, 10, 4, 5)  # T, Z, Y, X
    plane, k = preview_pixels(stack, "TZYX", (1, 3))
    assert k is None and np.array_equal(plane, stack[1, 3][None])  # channels first
    slab, k = preview_pixels(stack, "TZYX", (1, 3), "ZYX")
    assert np.array_equal(slab, stack[1, 0:8][None]) and k == 3  # 4 planes each side, cut at the top
    chans = np.zeros((10, 2, 4, 5))  # Z, C, Y, X
    slab, k = preview_pixels(chans, "ZCYX", (9,), "ZYX")
    assert slab.shape == (2, 5, 4, 5) and k == 4
