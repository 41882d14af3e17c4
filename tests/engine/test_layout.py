import numpy as np
import pytest

from napari_unet.engine import layout as ax
from napari_unet.errors import UserInputError


@pytest.mark.parametrize("shape,in_channels,expected", [
    ((50, 60), None, "YX"),
    ((50, 60, 3), None, "YXC"),
    ((2, 50, 60), None, "ZYX"),  # a leading axis is channels only when the model says so
    ((2, 50, 60), 2, "CYX"),
    ((50, 60, 2), None, "YXC"),  # a short trailing axis is channels, whatever the model
    ((50, 60, 5), 1, "YXC"),
    ((2, 12, 50, 60), 2, "CZYX"),
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


@pytest.mark.parametrize("shape,spatial,layout", [
    ((20, 30), "YX", "none"), ((20, 30, 3), "YX", "last"), ((20, 30, 4), "YX", "last"), ((20, 30, 2), "YX", "last"),
    ((8, 20, 30), "ZYX", "none"), ((8, 20, 30, 2), "ZYX", "last"),
])
def test_input_layout(shape, spatial, layout):
    assert ax.input_layout(shape, spatial) == layout


@pytest.mark.parametrize("shape", [(40, 20, 30), (2, 20, 30), (2, 3, 20, 30)])
def test_a_stack_given_as_one_plane_is_refused_with_how_to_declare_channels(shape):
    with pytest.raises(UserInputError, match="stack of .* planes.*CYX"):
        ax.input_layout(shape)


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
    planes, anns, _ = ax.annotated_planes(image, ann, "ZYX", "none")
    assert len(planes) == 2
    np.testing.assert_array_equal(planes[1], image[4])
    assert anns[1][5, 5] == 2


def test_annotations_of_the_wrong_shape_are_refused():
    with pytest.raises(UserInputError, match="annotations have shape"):
        ax.annotated_planes(np.zeros((5, 20, 30)), np.zeros((20, 30), np.uint8), "ZYX", "none")


def test_grayscale_model_refuses_multichannel_plane():
    with pytest.raises(UserInputError, match="channels"):
        ax.plane(np.zeros((3, 2, 10, 10)), "ZCYX", (0,), "none")
