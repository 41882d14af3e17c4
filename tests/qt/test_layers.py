"""Layer helpers, with stand-ins for napari layers (they are duck-typed)."""

from types import SimpleNamespace

import numpy as np
import pytest

from napari_unet._qt.layers import (
    channel_axis,
    compact_ids,
    labels_shape,
    layer_axes,
    plane_on_screen,
    spatial_shape,
    visible_window,
)
from napari_unet.errors import UserInputError


def layer(data, rgb=False, corners=None, offset=0.0):
    return SimpleNamespace(data=data, rgb=rgb, multiscale=False, corner_pixels=corners,
                           world_to_data=lambda point: np.asarray(point) - offset)


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
    assert channel_axis(layer(np.zeros((2, 10, 12)))) == "none"  # a 2-plane stack: napari shows it so
    assert spatial_shape(layer(np.zeros((2, 10, 12)))) == (10, 12)
    assert labels_shape(layer(np.zeros((2, 10, 12))), "CYX") == (10, 12)


@pytest.mark.parametrize("shape,rgb,axes", [((10, 12), False, "YX"), ((4, 10, 12), False, "ZYX"),
                                            ((3, 4, 10, 12), False, "TZYX"), ((4, 10, 12, 3), True, "ZYXC"),
                                            ((2, 3, 4, 10, 12), False, "TZCYX")])
def test_layer_axes(shape, rgb, axes):
    assert layer_axes(layer(np.zeros(shape), rgb=rgb)) == axes


def test_layer_axes_refuses_6d():
    with pytest.raises(UserInputError, match="Axes"):
        layer_axes(layer(np.zeros((1,) * 6)))


def test_plane_on_screen_follows_the_dims_point():
    stack = layer(np.zeros((3, 5, 10, 12)), offset=0.0)
    assert plane_on_screen(stack, "TZYX", [2, 4.4, 3, 3]) == (2, 4)
    assert plane_on_screen(stack, "TZYX", [9, -1, 3, 3]) == (2, 0)  # clipped into the stack
    assert plane_on_screen(layer(np.zeros((10, 12))), "YX", [1, 1]) == ()


def test_voxel_size_from_the_layer_scale():
    from types import SimpleNamespace

    from napari_unet._qt.layers import voxel_size

    assert voxel_size(SimpleNamespace(scale=[1, 2.5, 0.5, 0.5], rgb=False), "TZYX") == (2.5, 0.5, 0.5)
    assert voxel_size(SimpleNamespace(scale=[3, 1, 1], rgb=True), "ZYXC") == (3.0, 1.0, 1.0)
    assert voxel_size(SimpleNamespace(scale=[1, 1], rgb=False), "YX") == (1.0, 1.0, 1.0)


def test_compact_ids_keeps_every_id_and_narrows_only_when_they_fit():
    ids = np.array([[0, 1], [300, 65535]], np.uint32)
    out = compact_ids(ids)
    assert out.dtype == np.uint16 and np.array_equal(out, ids)
    wide = np.array([[0, 65536]], np.uint32)
    assert compact_ids(wide) is wide  # would not fit
    negative = np.array([[-1, 2]], np.int32)
    assert compact_ids(negative) is negative
    small = np.array([[0, 2]], np.uint8)
    assert compact_ids(small) is small  # already narrow
    assert compact_ids(np.zeros((0, 3), np.int64)).dtype == np.int64
