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


@pytest.mark.parametrize("shape,spatial,axes", [
    ((20, 30), "YX", "YX"), ((20, 30, 3), "YX", "YXC"), ((20, 30, 4), "YX", "YXC"), ((20, 30, 2), "YX", "YXC"),
    ((8, 20, 30), "ZYX", "ZYX"), ((8, 20, 30, 2), "ZYX", "ZYXC"),
])
def test_input_axes(shape, spatial, axes):
    assert ax.input_axes(shape, spatial) == axes
    assert ax.layout_of(axes) == {"C": "last"}.get(axes[-1], "none")


def test_input_axes_where_a_model_declares_its_channels():
    assert ax.input_axes((3, 20, 30), "YX", 3, "first") == "CYX"
    assert ax.input_axes((20, 30, 3), "YX", 3, "last") == "YXC"
    with pytest.raises(UserInputError, match="2 channels"):
        ax.input_axes((20, 30), "YX", 2, "first")
    # a grey image meets an RGB model as three equal channels (convert.wants_rgb), so it reads as a plane
    assert ax.input_axes((20, 30), "YX", 3, "last") == "YX"


@pytest.mark.parametrize("shape", [(40, 20, 30), (2, 20, 30), (2, 3, 20, 30)])
def test_a_stack_given_as_one_plane_is_refused_with_how_to_declare_channels(shape):
    with pytest.raises(UserInputError, match="stack of .* planes.*CYX"):
        ax.input_axes(shape)


@pytest.mark.parametrize("axes,shape", [("ZYX", (2, 3)), ("YXQ", (2, 3, 4)), ("ZZX", (2, 3, 4)), ("ZC", (2, 3))])
def test_bad_axes_are_refused(axes, shape):
    with pytest.raises(UserInputError, match="axes"):
        ax.check_axes(axes, shape)


@pytest.mark.parametrize("axes", ["TZCYX", "CZYX", "ZYXC", "TYX", "YXC", "XY"])
def test_plane_is_handed_over_channels_first(axes):
    sizes = {"T": 2, "Z": 3, "C": 2, "Y": 5, "X": 7}
    shape = tuple(sizes[a] for a in axes)
    image = np.arange(np.prod(shape)).reshape(shape)
    index = (1,) * sum(a in "TZ" for a in axes)
    p = ax.plane(image, axes, index)
    assert p.shape == (2 if "C" in axes else 1, 5, 7)
    # the value at (c=1, y=4, x=6) of plane index 1 comes from the same source pixel
    src = tuple({"T": 1, "Z": 1, "C": 1, "Y": 4, "X": 6}[a] for a in axes)
    assert p[1 if "C" in axes else 0, 4, 6] == image[src]


def test_resolve_reads_the_layout_once():
    found = ax.resolve((4, 3, 20, 30), "TZYX")
    assert found.stack == "TZ" and found.labels_shape == (4, 3, 20, 30) and len(found.planes) == 12
    assert found.planes[5].index == (1, 2) and found.planes[5].label_key[:2] == (1, 2) and not found.single
    volumes = ax.resolve((4, 3, 20, 30), "TZYX", spatial="ZYX")
    assert volumes.stack == "T" and len(volumes.planes) == 4
    rgb = ax.resolve((20, 30, 3))
    assert rgb.axes == "YXC" and rgb.channels == 3 and rgb.single and rgb.labels_shape == (20, 30)


def test_annotated_planes_picks_painted_slices():
    image = np.random.default_rng(0).random((5, 20, 30))
    ann = np.zeros((5, 20, 30), np.uint8)
    ann[1, 3, 3] = 1
    ann[4, 5, 5] = 2
    planes, anns, _ = ax.annotated_planes(image, ann, "ZYX")
    assert len(planes) == 2
    np.testing.assert_array_equal(planes[1], image[4][None])
    assert anns[1][5, 5] == 2


def test_annotations_of_the_wrong_shape_are_refused():
    with pytest.raises(UserInputError, match="annotations have shape"):
        ax.annotated_planes(np.zeros((5, 20, 30)), np.zeros((20, 30), np.uint8), "ZYX")


def test_a_model_refuses_an_image_of_other_channels():
    from napari_unet.engine.model.config import UNetConfig

    with pytest.raises(UserInputError, match="channels"):
        ax.resolve((3, 2, 10, 10), "ZCYX", UNetConfig())
