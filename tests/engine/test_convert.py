import numpy as np
import pytest

from napari_unet.engine import convert, crops
from napari_unet.errors import UserInputError


def test_pixels_that_are_not_numbers_are_refused():
    with pytest.raises(UserInputError, match="not numeric"):
        convert.prepare(np.full((1, 4, 4), "a"))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int8, np.uint32, np.float32, np.float64, bool])
def test_normalisation_maps_percentiles_to_unit_range(dtype):
    rng = np.random.default_rng(0)
    img = (rng.random((50, 60)) * (1 if dtype in (bool,) else 100)).astype(dtype)
    out = convert.prepare(img[None], percentiles=(0.0, 100.0))
    assert out.dtype == np.float32 and out.shape == (1, 50, 60)
    if dtype is not bool:
        assert out.min() == pytest.approx(0.0, abs=1e-6) and out.max() == pytest.approx(1.0, abs=1e-6)


def test_normalisation_survives_constant_and_nan_images():
    assert np.all(convert.prepare(np.full((1, 8, 8), 7.0), percentiles=(1, 99)) == 0)
    img = np.arange(64, dtype=np.float32).reshape(8, 8)
    img[0, 0], img[1, 1] = np.nan, np.inf
    out = convert.prepare(img[None], percentiles=(1, 99))
    assert np.isfinite(out).all()


def test_crop_padded_inside_and_outside():
    a = np.arange(20).reshape(4, 5)
    assert np.array_equal(crops.crop_padded(a, (1, 1), (2, 2), "reflect"), a[1:3, 1:3])
    out = crops.crop_padded(a, (-2, 3), (6, 6), "zeros")
    assert out.shape == (6, 6) and out[0, 0] == 0 and out[2, 0] == a[0, 3]
    assert crops.crop_padded(np.ones((1, 1)), (-3, -3), (7, 7), "reflect").shape == (7, 7)


def test_crop_padded_volumes_keep_leading_axes():
    v = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # (C, Z, Y, X)
    assert np.array_equal(crops.crop_padded(v, (1, 0, 2), (2, 4, 3), "reflect"), v[:, 1:3, 0:4, 2:5])
    out = crops.crop_padded(v, (-1, 0, 0), (5, 4, 5), "zeros")
    assert out.shape == (2, 5, 4, 5) and not out[:, 0].any() and np.array_equal(out[:, 1:4], v)


def test_a_grey_image_meets_a_colour_model_as_three_equal_channels_and_rgba_loses_its_alpha():
    from napari_unet.engine.model.config import UNetConfig

    rgb_model = UNetConfig(in_channels=3, channel_axis="last")
    grey = np.random.default_rng(0).random((1, 20, 30)).astype(np.float32)
    conversion = convert.conversion_for(grey, rgb_model)
    out = convert.normalize(grey, conversion)
    assert conversion.rgb and out.shape == (3, 20, 30) and "grey image read as RGB" in conversion.notice
    np.testing.assert_array_equal(out[0], out[2])
    rgba = np.random.default_rng(1).random((4, 20, 30)).astype(np.float32)
    conversion = convert.conversion_for(rgba, rgb_model)
    assert convert.normalize(rgba, conversion).shape == (3, 20, 30) and "alpha dropped" in conversion.notice
    assert convert.conversion_for(rgba[:3], rgb_model).notice is None  # RGB as it is


def test_a_bright_background_is_told_from_a_dark_one_in_colour_and_grey():
    rng = np.random.default_rng(2)
    dark = rng.random((64, 64)) * 0.1
    dark[20:30, 20:30] = 1.0  # a bright object on a dark background (fluorescence)
    stained = np.stack([1 - dark * 0.5, 1 - dark * 0.9, 1 - dark * 0.3])  # dark purple on white (H&E-like)
    assert not convert.has_bright_background(dark[None])
    assert convert.has_bright_background(stained) and convert.has_bright_background(1 - dark[None])
