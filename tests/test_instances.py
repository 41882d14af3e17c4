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
