"""Per-object measurements against hand-counted pixels."""

import csv

import numpy as np
import pytest

from napari_unet.engine.prediction import measure
from napari_unet.errors import UserInputError


def _labels():
    labels = np.zeros((10, 12), np.uint16)
    labels[1:4, 1:5] = 1  # 3 x 4 = 12 pixels
    labels[6:9, 6:11] = 2  # 3 x 5 = 15 pixels
    labels[0, 11] = 7  # 1 pixel, an id without a known class
    return labels


def test_areas_boxes_intensities_and_classes_by_hand():
    labels = _labels()
    image = np.zeros((10, 12, 2))
    image[..., 0] = 10.0
    image[6:9, 6:11, 1] = 3.0
    table = measure.measure_objects(labels, image, classes=[1, 2], class_names=["nucleus", "mitosis"],
                                    pixel_size=0.5)
    assert list(table["label"]) == [1, 2, 7]
    assert list(table["area"]) == [12, 15, 1]
    assert list(table["area_um2"]) == [3.0, 3.75, 0.25]
    assert list(table["class_name"]) == ["nucleus", "mitosis", "nucleus"]
    assert [table[f"bbox-{i}"][0] for i in range(4)] == [1, 1, 4, 5]  # start, then stop (exclusive)
    assert table["centroid-0"][1] == pytest.approx(7.0) and table["centroid-1"][1] == pytest.approx(8.0)
    assert list(table["intensity_mean-c0"]) == [10.0, 10.0, 10.0]
    assert table["intensity_max-c1"][1] == 3.0 and table["intensity_min-c1"][0] == 0.0
    assert {"perimeter", "eccentricity", "solidity"} <= set(table)


def test_3d_objects_get_a_volume_and_stacks_are_measured_per_plane():
    volume = np.zeros((4, 6, 6), np.uint8)
    volume[1:3, 1:4, 1:4] = 1
    table = measure.measure_objects(volume, pixel_size=2.0)
    assert list(table["volume"]) == [18] and list(table["volume_um3"]) == [18 * 8.0]
    stack = np.zeros((2, 8, 8), np.uint16)
    stack[0, 1:3, 1:3], stack[1, 4:7, 4:7], stack[1, 0, 0] = 1, 1, 2
    image = np.ones((2, 8, 8))
    table = measure.measure_image(stack, image, "ZYX")
    assert list(table["z"]) == [0, 1, 1] and list(table["area"]) == [4, 9, 1]


def test_csv_has_one_row_per_object(tmp_path):
    path = measure.write_csv(tmp_path / "m.csv", measure.measure_objects(_labels()))
    rows = list(csv.DictReader(open(path)))
    assert [int(r["label"]) for r in rows] == [1, 2, 7] and [int(r["area"]) for r in rows] == [12, 15, 1]
    with pytest.raises(UserInputError, match="CSV"):
        measure.write_csv(tmp_path / "m.txt", {"label": np.zeros(0)})
    with pytest.raises(UserInputError, match="instance mask"):
        measure.measure_objects(np.full((3, 3), -1))
