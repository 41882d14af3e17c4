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


def _same_partition(a, b):
    """Same foreground, and ids of a map one to one onto ids of b."""
    assert ((a > 0) == (b > 0)).all()
    pairs = np.unique(np.stack([a[a > 0], b[a > 0]]), axis=1)
    return len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))


def _whole_at_once(mask, spacing=None, split=True, min_size=30):
    from scipy import ndimage as ndi

    from napari_unet.instances.split import SplitParams as _SplitParams
    from napari_unet.instances.split import reach_of as _reach
    from napari_unet.instances.split import split_region as _split_region

    sp = None if spacing is None else np.asarray(spacing, float) / min(spacing)
    params = _SplitParams(1, min_size, 1.0, 2.0, split, sp, _reach(2.0, sp, mask.ndim))
    return _split_region(ndi.binary_fill_holes(mask), params)


def _ring(shape, centre, outer, inner, gap=False):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    d2 = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2
    ring = (d2 <= outer**2) & (d2 > inner**2)
    if gap:  # a "C": its inside is no hole
        ring[centre[0] - 3:centre[0] + 3, centre[1]:] = False
    return ring


def _count_calls(monkeypatch, module, name: str) -> list:
    """Wrap ``module.name`` so that every call appends to the returned list."""
    calls, original = [], getattr(module, name)

    def counted(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


class _Reads:
    """A read-only array that records the size of every read."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.largest = array, array.shape, array.dtype, 0

    def __getitem__(self, key):
        part = self.array[key]
        self.largest = max(self.largest, part.size)
        return part


def test_windows_give_the_objects_of_the_whole_mask(monkeypatch):
    from scipy import ndimage as ndi

    from napari_unet.engine.disk.io import read_image
    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows
    from napari_unet.sample_data import sample_paths

    nuclei = read_image(sample_paths()["mask"]) > 0
    nuclei = np.tile(nuclei[:260, :350], (1, 2))  # touching nuclei cut by the seam, at tile edges too
    nuclei[100:104, :] = False  # a cut through many nuclei: fragments near each other
    nuclei[:, 400:404] = True  # a bar the height of the field: one cluster larger than any window
    nuclei |= _ring(nuclei.shape, (180, 150), 60, 50) | _ring(nuclei.shape, (130, 560), 60, 50, gap=True)
    blobs = ndi.gaussian_filter(np.random.default_rng(1).random((10, 50, 60)), (1, 3, 3)) > 0.53
    calls = _count_calls(monkeypatch, _windows, "_find_large_cluster")
    cases = [(nuclei, None, True), (nuclei, None, False), (blobs, (3.0, 1.0, 1.0), True)]
    # clusters larger than a window; most in their tile's window; one window
    for tile, tile_cases in [(32, cases[:1]), (64, cases), (4096, cases[:2])]:
        monkeypatch.setattr(_windows, "TILE_PIXELS", tile**2)
        calls.clear()
        for mask, spacing, split in tile_cases:
            found = instances.instances_from_semantic(mask.astype(np.uint8), 1, spacing=spacing, split=split)
            expected = _whole_at_once(mask, spacing, split, 30)
            assert found.labels.max() == expected.max() > 5
            assert _same_partition(found.labels, expected)
        assert (len(calls) > 0) == (tile < 4096)
    labels = instances.instances_from_semantic(nuclei.astype(np.uint8), 1).labels
    assert labels[180, 150] > 0 and labels[130, 560] == 0  # the ring's hole filled, the C's inside not
    # and a comparison that can fail: the clusters split without their surroundings differ
    monkeypatch.setattr(_windows, "TILE_PIXELS", 48**2)  # (at 64^2 the windows happen to be wide enough)
    monkeypatch.setattr(instances, "reach_of", lambda smooth, spacing, ndim: (0,) * ndim)
    found = instances.instances_from_semantic(nuclei.astype(np.uint8), 1).labels
    assert not _same_partition(found, _whole_at_once(nuclei))


def test_the_plane_is_read_a_window_at_a_time(monkeypatch):
    from napari_unet.engine.disk.io import read_image
    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows
    from napari_unet.sample_data import sample_paths

    monkeypatch.setattr(_windows, "TILE_PIXELS", 64**2)
    nuclei = (read_image(sample_paths()["mask"]) > 0).astype(np.uint8)
    semantic = _Reads(nuclei)
    found = instances.instances_from_semantic(semantic, 1)
    assert found.labels.max() > 50
    assert semantic.largest < nuclei.size / 2  # windows (the largest cluster is 216 x 179 px), not the plane
    assert _same_partition(found.labels, _whole_at_once(nuclei > 0))


def test_classes_are_numbered_after_each_other_with_windows(monkeypatch):
    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows

    monkeypatch.setattr(_windows, "TILE_PIXELS", 16**2)
    sem = disks([(20, 20), (20, 60)], 8) + disks([(60, 20), (60, 60)], 8, value=2)
    result = instances.instances_from_semantic(sem, 2)
    assert sorted(np.unique(result.labels).tolist()) == [0, 1, 2, 3, 4]
    assert sorted(result.classes.tolist()) == [1, 1, 2, 2]
    for i in range(1, 5):
        assert (sem[result.labels == i] == result.classes[i - 1]).all()


def test_objects_written_into_a_zarr_array_where_regions_overlap(tmp_path, monkeypatch):
    import zarr

    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows

    monkeypatch.setattr(_windows, "TILE_PIXELS", 16**2)
    sem = np.zeros((70, 120), np.uint8)
    sem[8:21, 30:43] = 1  # a blob, split in its tile's window...
    sem[10:54, 96:104] = sem[46:54, 10:104] = 1  # ...inside the box of an "_|" larger than a window, split later
    expected = instances.instances_from_semantic(sem, 1)
    out = zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=sem.shape, chunks=(16, 16), dtype="u4")
    found = instances.instances_from_semantic(zarr.array(sem, chunks=(16, 16)), 1, out=out)
    assert expected.labels[14, 36] > 0 and expected.labels.max() >= 2
    np.testing.assert_array_equal(out[:], expected.labels)
    assert found.classes.tolist() == expected.classes.tolist()


def _comb(shape, radius, spacing, row_spacing):
    """Rows of touching discs joined by a column of them at the left: one cluster over the plane
    (confluent tissue), whose background reaches the border. 3D: such planes of balls, joined."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(0)
    centres = np.zeros(shape, bool)
    planes = slice(radius, None, spacing) if len(shape) == 3 else Ellipsis
    centres[planes, radius::row_spacing, radius::spacing] = True
    centres[planes, radius::spacing, radius] = True
    if len(shape) == 3:  # and the planes joined at a corner
        centres[radius::spacing, radius, radius] = True
    distance, nearest = ndi.distance_transform_edt(~centres, return_indices=True)
    radii = rng.uniform(radius, radius * 1.25, size=shape)[tuple(nearest)]  # each disc its own size
    return distance <= radii


def test_a_cluster_too_large_for_a_window_is_split_a_window_at_a_time(monkeypatch):
    from scipy import ndimage as ndi

    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows

    calls = _count_calls(monkeypatch, _windows, "_split_giant_part")
    comb = _comb((560, 720), 6, 12, 20)
    comb3d = _comb((40, 100, 120), 7, 13, 20)
    assert ndi.label(comb)[1] == 1 and ndi.label(comb3d, np.ones((3, 3, 3)))[1] == 1
    # margins of 64 px (2D) and 20 voxels (3D): every nucleus comes out as in the whole plane
    for mask, spacing, tile in [(comb, None, 256), (comb3d, None, 48)]:
        monkeypatch.setattr(_windows, "TILE_PIXELS", tile**mask.ndim)
        monkeypatch.setattr(_windows, "LARGE_CLUSTER_PIXELS", {mask.ndim: (tile * 3 // 2) ** mask.ndim})
        calls.clear()
        found = instances.instances_from_semantic(mask.astype(np.uint8), 1, spacing=spacing).labels
        expected = _whole_at_once(mask, spacing)
        assert len(calls) > 1  # the giant cluster went through windows
        assert found.max() == expected.max() > 100
        assert _same_partition(found, expected)


def test_objects_larger_than_a_margin_in_a_giant_cluster_are_cut_at_tile_edges(monkeypatch):
    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows

    monkeypatch.setattr(_windows, "TILE_PIXELS", 128**2)  # margins of 32 px
    monkeypatch.setattr(_windows, "LARGE_CLUSTER_PIXELS", {2: 256**2})
    mask = _comb((300, 400), 6, 12, 20) | _ring((300, 400), (150, 200), 70, 0)  # a disc of 140 px in it
    found = instances.instances_from_semantic(mask.astype(np.uint8), 1).labels
    expected = _whole_at_once(mask)
    np.testing.assert_array_equal(found > 0, expected > 0)  # no pixel lost
    big = expected[150, 200]
    pieces = np.unique(found[expected == big])
    assert len(pieces) > 2 and all((expected[found == i] == big).all() for i in pieces)
    # every other object is the whole plane's
    pairs = np.unique(np.stack([found[mask], expected[mask]]), axis=1)
    one_to_one = (np.bincount(pairs[0])[pairs[0]] == 1) & (np.bincount(pairs[1])[pairs[1]] == 1)
    assert one_to_one.sum() == expected.max() - 1 > 200
