import numpy as np

from napari_unet.instances import instance_labels, semantic_labels


def probs_from(semantic, n_out=2):
    p = np.zeros((n_out, *semantic.shape), np.float32)
    for k in range(n_out):
        p[k] = semantic == k
    return p


def disks(centres, radius, shape=(80, 80), value=1):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, np.uint8)
    for cy, cx in centres:
        out[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = value
    return out


def test_touching_disks_are_split():
    sem = disks([(40, 28), (40, 50)], 12)
    result = instance_labels(probs_from(sem))
    assert result.labels.max() == 2
    assert set(result.classes.tolist()) == {1}
    left, right = result.labels[40, 20], result.labels[40, 58]
    assert left != right and left > 0 and right > 0


def test_small_objects_removed_and_holes_filled():
    sem = disks([(20, 20)], 10) | disks([(60, 60)], 2)
    sem[20, 20] = 0  # a hole
    labels = instance_labels(probs_from(sem), min_size=30).labels
    assert labels.max() == 1 and labels[20, 20] == 1 and labels[60, 60] == 0


def test_each_class_gets_its_own_ids():
    sem = disks([(20, 20)], 8) + disks([(60, 60)], 8, value=2)
    result = instance_labels(probs_from(sem, 3))
    assert result.labels.max() == 2
    assert sorted(result.classes.tolist()) == [1, 2]
    assert result.classes[result.labels[60, 60] - 1] == 2


def test_empty_prediction():
    result = instance_labels(probs_from(np.zeros((10, 10), np.uint8)))
    assert result.labels.max() == 0 and result.classes.size == 0


def test_semantic_labels_are_argmax():
    p = np.zeros((3, 2, 2), np.float32)
    p[0, 0, 0] = p[1, 0, 1] = p[2, 1, 0] = p[2, 1, 1] = 1
    assert semantic_labels(p).tolist() == [[0, 1], [2, 2]]


def _smoothed_distance(mask, sigma):
    from scipy import ndimage as ndi

    return ndi.gaussian_filter(ndi.distance_transform_edt(mask), sigma)


def test_h_maxima_by_component_matches_scikit_image():
    import pytest
    from scipy import ndimage as ndi
    from skimage import morphology

    from napari_unet._sample_data import sample_paths
    from napari_unet.instances import h_maxima
    from napari_unet.io import read_image

    rng = np.random.default_rng(0)
    nuclei = read_image(sample_paths()["mask"])[:200, :300] > 0
    blobs_3d = ndi.gaussian_filter(rng.random((12, 60, 70)), 3) > 0.55
    edge = np.zeros((60, 60), bool)
    edge[:20, :25] = True  # touches the image border: the 0 around it is padding
    plateau = np.zeros((30, 30))
    plateau[5:15, 5:15] = 1.4  # no 0 inside its box, top 1.4: only the padding makes it h high
    plateau[7:13, 7:13] = 0.5
    cases = [_smoothed_distance(nuclei, 2), _smoothed_distance(nuclei, 0), _smoothed_distance(blobs_3d, 1),
             _smoothed_distance(edge, 2), plateau,
             _smoothed_distance(ndi.gaussian_filter(rng.random((80, 90)), 2) > 0.5, 1)]  # one big component
    for image in cases:
        for h in (0.5, 1.0, 2.0):
            expected = morphology.h_maxima(image, h)
            np.testing.assert_array_equal(h_maxima(image, h), expected)
    assert morphology.h_maxima(cases[0], 1.0).sum() > 5  # the comparison is not between empty masks
    with pytest.raises(AssertionError):  # and it can fail: without the padding the plateau's top is lost
        np.testing.assert_array_equal(morphology.h_maxima(plateau[5:15, 5:15], 1.0),
                                      morphology.h_maxima(plateau, 1.0)[5:15, 5:15])


def _same_partition(a, b):
    """Same foreground, and ids of a map one to one onto ids of b."""
    assert ((a > 0) == (b > 0)).all()
    pairs = np.unique(np.stack([a[a > 0], b[a > 0]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def _whole_at_once(mask, spacing=None, split=True, min_size=30):
    from scipy import ndimage as ndi

    from napari_unet.instances import _split_region

    sp = None if spacing is None else np.asarray(spacing, float) / min(spacing)
    return _split_region(ndi.binary_fill_holes(mask), min_size, 1.0, 2.0, split, sp)


def test_blocks_of_clusters_give_the_objects_of_the_whole_mask(monkeypatch):
    from scipy import ndimage as ndi

    from napari_unet import instances
    from napari_unet._sample_data import sample_paths
    from napari_unet.io import read_image

    monkeypatch.setattr(instances, "BLOCK_PIXELS", 16**2)  # many blocks even in a small field
    nuclei = read_image(sample_paths()["mask"]) > 0
    nuclei = np.tile(nuclei[:260, :350], (1, 2))  # touching nuclei cut by the seam, at block edges too
    nuclei[100:104, :] = False  # a cut through many nuclei: fragments near each other
    blobs = ndi.gaussian_filter(np.random.default_rng(1).random((10, 50, 60)), (1, 3, 3)) > 0.53
    for mask, spacing, split in [(nuclei, None, True), (nuclei, None, False), (blobs, (3.0, 1.0, 1.0), True)]:
        found = instances.instances_from_semantic(mask.astype(np.uint8), 1, spacing=spacing, split=split)
        expected = _whole_at_once(mask, spacing, split, 30)
        assert found.labels.max() == expected.max() > 5
        assert _same_partition(found.labels, expected)
    # and a comparison that can fail: the clusters split without their surroundings differ
    monkeypatch.setattr(instances, "_reach", lambda smooth, spacing, ndim: (0,) * ndim)
    found = instances.instances_from_semantic(nuclei.astype(np.uint8), 1).labels
    assert not _same_partition(found, _whole_at_once(nuclei))


def test_classes_are_numbered_after_each_other_with_blocks(monkeypatch):
    from napari_unet import instances

    monkeypatch.setattr(instances, "BLOCK_PIXELS", 16**2)
    sem = disks([(20, 20), (20, 60)], 8) + disks([(60, 20), (60, 60)], 8, value=2)
    result = instances.instances_from_semantic(sem, 2)
    assert sorted(np.unique(result.labels).tolist()) == [0, 1, 2, 3, 4]
    assert result.classes.tolist() == [1, 1, 2, 2]
    assert result.classes[result.labels[60, 60] - 1] == 2 and result.classes[result.labels[20, 60] - 1] == 1


def test_cluster_map_is_uint16_when_it_fits_and_int32_past_65535_clusters():
    from napari_unet.instances import _label_compact

    few = np.zeros((20, 20), bool)
    few[2:5, 2:5] = few[10:12, 10:15] = True
    labels, n = _label_compact(few)
    assert labels.dtype == np.uint16 and n == 2 and labels[3, 3] != labels[11, 11]
    dots = np.zeros((600, 600), bool)
    dots[::2, ::2] = True  # 90000 separate pixels
    labels, n = _label_compact(dots)
    assert labels.dtype == np.int32 and n == 90000 and labels.max() == 90000


def test_objects_written_into_a_zarr_array_where_block_regions_overlap(tmp_path, monkeypatch):
    import zarr

    from napari_unet import instances

    monkeypatch.setattr(instances, "BLOCK_PIXELS", 16**2)
    sem = np.zeros((70, 120), np.uint8)
    sem[8:21, 30:43] = 1  # a blob, first in raster order...
    sem[10:54, 96:104] = sem[46:54, 10:104] = 1  # ...inside the box of an "_|" far from it, split later
    expected = instances.instances_from_semantic(sem, 1)
    out = zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=sem.shape, chunks=(16, 16), dtype="u4")
    found = instances.instances_from_semantic(sem, 1, out=out)
    assert expected.labels[14, 36] > 0 and expected.labels.max() >= 2
    np.testing.assert_array_equal(out[:], expected.labels)
    assert found.classes.tolist() == expected.classes.tolist()


def test_h_maxima_of_a_large_component_in_pieces_is_the_same(monkeypatch):
    from scipy import ndimage as ndi

    from napari_unet import instances
    from napari_unet._sample_data import sample_paths
    from napari_unet.io import read_image

    rng = np.random.default_rng(2)
    chain = np.zeros((60, 400), bool)  # nuclei of all sizes 2-12 px apart, some touching, some specks
    yy, xx = np.mgrid[:60, :400]
    x = 8
    while x < 390:
        r = rng.choice([1.5, 3, 6, 9, 12])
        chain |= (yy - 30 - rng.integers(-8, 9)) ** 2 + (xx - x - r) ** 2 <= r * r
        x += int(2 * r) + int(rng.integers(-2, 13))
    nuclei = read_image(sample_paths()["mask"])[:200, :300] > 0
    ridge = np.zeros((9, 300))
    ridge[3:6, 5:295] = 0.5  # a low bump at one end, a high peak 250 px along a ridge of h/2 or less
    ridge[4, 10], ridge[4, 260] = 1.2, 5.0
    far_bump = ridge.copy()
    far_bump[4, 260] = 1.1  # and the same with nothing higher along it
    cases = [ridge, far_bump,
             _smoothed_distance(chain, 2), _smoothed_distance(chain, 1), _smoothed_distance(nuclei, 2),
             _smoothed_distance(ndi.gaussian_filter(rng.random((12, 40, 50)), 2) > 0.5, 1)]
    for image in cases:
        for h in (0.5, 1.0, 2.0):
            monkeypatch.setattr(instances, "LARGE_COMPONENT", 10**9)
            expected = instances.h_maxima(image, h)
            monkeypatch.setattr(instances, "LARGE_COMPONENT", 64)  # every component in pieces
            np.testing.assert_array_equal(instances.h_maxima(image, h), expected)
    _, n = ndi.label(cases[2] > 0, structure=np.ones((3, 3)))
    _, pieces = ndi.label(cases[2] > 0.5, structure=np.ones((3, 3)))
    assert n < 5 < pieces  # the chain is one long component (what needs pieces), in many pieces
    assert instances.h_maxima(cases[2], 1.0).sum() > 10
    assert instances.h_maxima(ridge, 1.0)[4, 10] == 0 and instances.h_maxima(far_bump, 1.0)[4, 10] == 1
