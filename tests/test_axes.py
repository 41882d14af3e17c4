import numpy as np
import pytest

from napari_unet import axes as ax
from napari_unet.errors import UserInputError


@pytest.mark.parametrize("shape,in_channels,expected", [
    ((50, 60), None, "YX"),
    ((50, 60, 3), None, "YXC"),
    ((2, 50, 60), None, "CYX"),
    ((12, 50, 60), None, "ZYX"),
    ((12, 50, 60), 1, "ZYX"),
    ((3, 50, 60), 1, "ZYX"),
    ((3, 50, 60), 3, "CYX"),
    ((5, 12, 50, 60), 1, "TZYX"),
    ((12, 50, 60, 2), 2, "ZYXC"),
    ((12, 2, 50, 60), 2, "ZCYX"),
    ((4, 12, 2, 50, 60), 2, "TZCYX"),
])
def test_guess_axes(shape, in_channels, expected):
    assert ax.guess_axes(shape, in_channels) == expected


@pytest.mark.parametrize("axes,shape", [("ZYX", (2, 3)), ("YXQ", (2, 3, 4)), ("ZZX", (2, 3, 4)), ("ZC", (2, 3))])
def test_bad_axes_are_refused(axes, shape):
    with pytest.raises(UserInputError, match="axes"):
        ax.check_axes(axes, shape)


@pytest.mark.parametrize("axes,layout", [("TZCYX", "first"), ("CZYX", "first"), ("ZYXC", "last"), ("TYX", "none")])
def test_plane_is_in_the_model_layout(axes, layout):
    sizes = {"T": 2, "Z": 3, "C": 2, "Y": 5, "X": 7}
    shape = tuple(sizes[a] for a in axes)
    image = np.arange(np.prod(shape)).reshape(shape)
    index = (1,) * sum(a in "TZ" for a in axes)
    p = ax.plane(image, axes, index, ax.layout_of(axes))
    expected = {"first": (2, 5, 7), "last": (5, 7, 2), "none": (5, 7)}[layout]
    assert p.shape == expected
    # the value at (c=1, y=4, x=6) of plane index 1 comes from the same source pixel
    src = tuple({"T": 1, "Z": 1, "C": 1, "Y": 4, "X": 6}[a] for a in axes)
    got = {"first": p[1, 4, 6] if layout == "first" else None, "last": p[4, 6, 1] if layout == "last" else None,
           "none": p[4, 6] if layout == "none" else None}[layout]
    assert got == image[src]


def test_annotated_planes_picks_painted_slices():
    image = np.random.default_rng(0).random((5, 20, 30))
    ann = np.zeros((5, 20, 30), np.uint8)
    ann[1, 3, 3] = 1
    ann[4, 5, 5] = 2
    planes, anns = ax.annotated_planes(image, ann, "ZYX", "none")
    assert len(planes) == 2
    np.testing.assert_array_equal(planes[1], image[4])
    assert anns[1][5, 5] == 2


def test_annotations_of_the_wrong_shape_are_refused():
    with pytest.raises(UserInputError, match="annotations have shape"):
        ax.annotated_planes(np.zeros((5, 20, 30)), np.zeros((20, 30), np.uint8), "ZYX", "none")


def test_grayscale_model_refuses_multichannel_plane():
    with pytest.raises(UserInputError, match="channels"):
        ax.plane(np.zeros((3, 2, 10, 10)), "ZCYX", (0,), "none")
