"""Layer helpers, with stand-ins for napari layers (they are duck-typed)."""

from types import SimpleNamespace

import numpy as np

from napari_unet._layer_data import channel_axis, spatial_shape, visible_window


def layer(data, rgb=False, corners=None):
    return SimpleNamespace(data=data, rgb=rgb, multiscale=False, corner_pixels=corners)


def test_small_images_are_previewed_whole():
    assert visible_window(layer(np.zeros((500, 700))), (500, 700), 768) is None


def test_window_follows_the_view_and_is_capped():
    big = layer(np.zeros((4000, 3000)), corners=np.array([[1000, 500], [1400, 900]]))
    assert visible_window(big, (4000, 3000), 768) == (1000, 1400, 500, 900)
    zoomed_out = layer(np.zeros((4000, 3000)), corners=np.array([[0, 0], [4000, 3000]]))
    y0, y1, x0, x1 = visible_window(zoomed_out, (4000, 3000), 768)
    assert (y1 - y0, x1 - x0) == (768, 768) and y0 == 2000 - 384 and x0 == 1500 - 384


def test_window_stays_inside_the_image():
    edge = layer(np.zeros((2000, 2000)), corners=np.array([[-300, 1900], [100, 2300]]))
    y0, y1, x0, x1 = visible_window(edge, (2000, 2000), 768)
    assert 0 <= y0 < y1 <= 2000 and 0 <= x0 < x1 <= 2000


def test_channel_layouts_of_layers():
    assert channel_axis(layer(np.zeros((10, 12, 3)), rgb=True)) == "last"
    assert spatial_shape(layer(np.zeros((10, 12, 3)), rgb=True)) == (10, 12)
    assert channel_axis(layer(np.zeros((2, 10, 12)))) == "first"
    assert spatial_shape(layer(np.zeros((2, 10, 12)))) == (10, 12)
