"""Object size: diameters measured on masks and predictions, and images rescaled to a model's size."""

import numpy as np
import pytest

from napari_unet.engine.prediction import size


def discs(radius: float, shape=(256, 256), spacing: float = 3.2, seed: int = 0):
    """Instance labels of discs of ``radius`` px, ``spacing`` radii between centres, jittered."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    labels = np.zeros(shape, np.int32)
    for cy in np.arange(radius + 2, shape[0] - radius - 2, spacing * radius):
        for cx in np.arange(radius + 2, shape[1] - radius - 2, spacing * radius):
            jy, jx = rng.uniform(-0.3, 0.3, 2) * radius
            labels[((yy - cy - jy) ** 2 + (xx - cx - jx) ** 2 <= radius ** 2) & (labels == 0)] = labels.max() + 1
    return labels


def doublets(radius: float, shape, seed: int = 0):
    """Instance labels of pairs of overlapping discs of ``radius`` (centres 1.6 radii apart: a long shared
    edge that only the split can find), the pairs apart from each other, turned at random."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    labels = np.zeros(shape, np.int32)
    for cy in range(int(2 * radius), shape[0] - int(2 * radius), int(5 * radius)):
        for cx in range(int(2 * radius), shape[1] - int(2 * radius), int(5 * radius)):
            angle = rng.uniform(0, np.pi)
            for sign in (-1, 1):
                y, x = cy + sign * 0.8 * radius * np.sin(angle), cx + sign * 0.8 * radius * np.cos(angle)
                labels[((yy - y) ** 2 + (xx - x) ** 2 <= radius ** 2) & (labels == 0)] = labels.max() + 1
    return labels


@pytest.mark.parametrize("radius", [6, 14, 30])
def test_the_diameter_of_discs_of_three_sizes_is_found_within_15_percent(radius):
    labels = discs(radius, shape=(384, 384))
    assert size.diameter_of_labels(labels) == pytest.approx(2 * radius, rel=0.15)
    assert size.diameter_of_foreground(labels > 0) == pytest.approx(2 * radius, rel=0.15)


def test_doublets_keep_their_width_and_clusters_say_nothing():
    assert size.diameter_of_foreground(doublets(10, (200, 200)) > 0) == pytest.approx(20, rel=0.15)
    chains = discs(10, (200, 200), spacing=1.8) > 0  # mostly rows and columns of touching discs: clusters
    found = size.diameter_of_foreground(chains)
    assert np.isnan(found) or found == pytest.approx(20, rel=0.15)  # the lone discs', never a cluster's size
    assert np.isnan(size.diameter_of_foreground(np.pad(chains[:100, :100] | True, 50) & chains))


def test_scale_for_leaves_close_sizes_alone_and_clips_far_ones():
    assert size.scale_for(20, 22) == 1.0 and size.scale_for(None, 40) == 1.0 and size.scale_for(20, float("nan")) == 1.0
    assert size.scale_for(20, 40) == pytest.approx(0.5) and size.scale_for(20, 10) == pytest.approx(2.0)
    assert size.scale_for(20, 1000) == size.MIN_SCALE
    assert size.scale_for(20, 14) == pytest.approx(20 / 14)


def test_an_estimate_rescales_further_off_and_never_jumps():
    """An estimated diameter must be further off before the image is rescaled, and the scale follows it
    without a step: two rounds' estimates a hair apart give scales a hair apart."""
    est = size.scale_for_estimate
    assert est(20, 20 / size.RESCALE_TOLERANCE) == 1.0 and est(20, 18) == 1.0 and est(None, 14) == 1.0
    assert 1.0 < est(20, 14.5) < 20 / 14.5  # between the two tolerances: part of the way
    assert est(20, 20 / size.ESTIMATE_TOLERANCE) == pytest.approx(size.ESTIMATE_TOLERANCE)
    assert est(20, 10) == pytest.approx(2.0) and est(20, 80) == pytest.approx(0.25) and est(20, 1000) == size.MIN_SCALE
    ratios = np.linspace(0.2, 5, 2001)
    for direction in (1, -1):
        scales = np.array([est(20, 20 / r ** direction) for r in ratios])
        # no jump at a tolerance: in log scale the scale never moves more than 3.3x what the estimate moves
        assert np.all(np.abs(np.diff(np.log(scales))) <= 3.3 * np.diff(np.log(ratios)))
        assert np.all(np.diff(scales) * direction >= 0)  # and monotone


def test_many_small_specks_do_not_outvote_a_few_real_objects():
    objects = discs(12, shape=(200, 200)) > 0  # 25 discs 24 px across
    specks = np.zeros((50, 50), bool)
    specks[::6, ::6] = True
    specks = np.repeat(np.repeat(specks, 4, 0), 4, 1)  # 81 specks of 4x4 px: a stain's texture read as foreground
    mask = np.concatenate([objects, specks], axis=1)
    assert size.diameter_of_foreground(mask) == pytest.approx(24, rel=0.15)


def test_the_few_widest_parts_do_not_decide_the_diameter():
    """Many nuclei and fewer, wider ones (or merged pairs): the foreground's diameter is the objects'
    median, as their labels give it, not the width of the parts that cover the most area."""
    small = discs(10, shape=(256, 256))  # 64 discs 20 px across
    large = discs(18, shape=(256, 256), spacing=2.4)  # 36 discs 36 px across: more area than the 64
    labels = np.concatenate([small, np.where(large > 0, large + small.max(), 0)], axis=1)
    assert (large > 0).sum() > (small > 0).sum()
    assert size.diameter_of_labels(labels) == pytest.approx(20, rel=0.15)
    assert size.diameter_of_foreground(labels > 0) == pytest.approx(20, rel=0.15)


def _scene(radius, blob_radius, shape, seed):
    """Bright nuclei of ``radius`` (each an object) and, with ``blob_radius``, as bright blobs of that radius
    painted as background (debris, out-of-focus cells): a model learns the nuclei by their size. uint16
    image, annotations (1 background, 2 nucleus) and the nuclei's instance labels."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    nuclei = discs(radius, shape, spacing=3.5, seed=seed)
    image = 200 + rng.normal(0, 30, shape)
    image[nuclei > 0] += 600
    if blob_radius:
        blobs = (discs(blob_radius, shape, spacing=3.0, seed=seed + 7) > 0) & ~ndi.binary_dilation(nuclei > 0, iterations=3)
        image[blobs] += 600
    annotations = np.where(nuclei > 0, 2, 1).astype(np.uint8)
    return image.clip(0, 65535).astype(np.uint16), annotations, nuclei


@pytest.mark.heavy_compute
def test_a_model_of_small_nuclei_segments_large_ones_once_rescaled_and_not_without():
    """A model that learned nuclei of 12 px from blobs of 36 px as bright takes nuclei of 36 px for blobs,
    unless they are rescaled to its size (measured: F1 1.0 against 0.0, fp32 and bf16 alike; in 150 steps,
    1.0 against 0.0 with seeds 0-2)."""
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import instance_f1
    from napari_unet.engine.training import train

    image, annotations, nuclei = _scene(6, 18, (256, 256), seed=1)
    config = train.TrainConfig(steps=150, time_budget=None, batch_size=4, patch_size=64, seed=0, threads=1)
    model = train.train([image], [annotations], config, unet_config=UNetConfig(depth=2, width=8), objects=[nuclei])
    assert model.config.diameter == pytest.approx(size.diameter_of_labels(nuclei))  # from the painted objects
    big, _, truth = _scene(18, 0, (384, 384), seed=2)  # three times the size
    rescaled = pipeline.predict_image(model, big, instances=True, diameter=size.diameter_of_labels(truth))
    as_is = pipeline.predict_image(model, big, instances=True, diameter=None)
    assert rescaled.scale == pytest.approx(1 / 3, rel=0.1) and rescaled.labels.shape == big.shape
    assert instance_f1(rescaled.labels, truth) > 0.9 and instance_f1(as_is.labels, truth) < 0.3


@pytest.mark.heavy_compute
def test_the_diameter_is_estimated_from_a_first_prediction():
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.training import train

    image, annotations, nuclei = _scene(6, 0, (192, 192), seed=3)
    config = train.TrainConfig(steps=150, time_budget=None, batch_size=4, patch_size=64, seed=0, threads=1)
    model = train.train([image], [annotations], config, unet_config=UNetConfig(depth=2, width=8), objects=[nuclei])
    for radius in (6, 13):
        big, _, truth = _scene(radius, 0, (320, 320), seed=4)
        found = pipeline.predict_image(model, big, instances=True)
        if radius == 6:
            assert found.scale == 1.0  # at the model's own size: not rescaled
        else:
            assert found.diameter == pytest.approx(size.diameter_of_labels(truth), rel=0.2)
            assert found.scale == pytest.approx(model.config.diameter / found.diameter) and found.notes


def test_an_estimate_near_the_diameter_the_last_round_trained_at_settles_on_it(monkeypatch):
    from types import SimpleNamespace

    model = SimpleNamespace(summary={"rounds": [{"image_diameter": None}, {"image_diameter": 14.6}]})
    assert size.settled(model, 15.4) == 14.6 and size.settled(model, 13.0) == 14.6  # a wobble: the trained size
    assert size.settled(model, 22.0) == 22.0  # objects of another size are measured as they are
    assert np.isnan(size.settled(model, float("nan")))
    assert size.settled(SimpleNamespace(summary={}), 15.4) == 15.4  # nothing trained yet: as measured
    assert size.settled(SimpleNamespace(summary={"rounds": [{"image_diameter": None}]}), 15.4) == 15.4
    monkeypatch.setattr(size, "measured_diameter", lambda m, chw: 15.4)
    assert size.estimate_diameter(model, np.zeros((1, 8, 8), np.float32)) == 14.6  # what Train and Predict use


def test_a_model_first_looks_at_the_scale_it_trained_at(monkeypatch):
    """At its own scale a model fine-tuned at 0.61x cut 36-px nuclei in pieces and measured the pieces."""
    from types import SimpleNamespace

    model = SimpleNamespace(summary={"rounds": [{"image_diameter": 36.0, "scale": 0.61}]},
                            config=SimpleNamespace(diameter=22.0))
    looks = []
    monkeypatch.setattr(size, "_look", lambda m, crop, scale: looks.append(scale) or {0.61: 35.0}.get(scale, 27.0))
    monkeypatch.setattr(size, "measured_diameter", lambda m, chw: 27.0)  # the pieces
    image = np.zeros((1, 8, 8), np.float32)
    assert size.estimate_diameter(model, image) == 36.0 and looks == [0.61]
    monkeypatch.setattr(size, "_look", lambda m, crop, scale: 18.0)  # another image: objects of another size
    assert size.estimate_diameter(model, image) == 27.0  # measured as it is


def test_an_image_the_measure_cannot_size_keeps_the_size_the_model_trained_at(monkeypatch):
    """A stained tile after three rounds at 0.41x: the look found fused pairs (48 px for 38) and the
    measure nan; seen as it is, F1 fell from 0.71 to 0.55."""
    from types import SimpleNamespace

    model = SimpleNamespace(summary={"rounds": [{"image_diameter": 38.0, "scale": 0.41}]},
                            config=SimpleNamespace(diameter=16.0))
    monkeypatch.setattr(size, "_look", lambda m, crop, scale: 48.0)
    monkeypatch.setattr(size, "measured_diameter", lambda m, chw: float("nan"))
    image = np.zeros((1, 8, 8), np.float32)
    assert size.estimate_diameter(model, image) == 38.0
    assert size.scale_for_estimate(16.0, size.estimate_diameter(model, image)) == pytest.approx(16 / 38)
    bundled = SimpleNamespace(summary={}, config=SimpleNamespace(diameter=16.0))
    assert np.isnan(size.estimate_diameter(bundled, image))  # nothing trained on: as it is, as before


def test_an_image_the_model_trained_on_is_seen_at_the_size_it_trained_it_at(monkeypatch):
    """A DSB2018 tile the bundled model could not size trained as it is in round 1; the round-1 model
    measured it at 0.55x and its F1 fell from 0.605 to 0.357. Each trained image keeps its own size."""
    from types import SimpleNamespace

    model = SimpleNamespace(summary={"rounds": [{"image_diameter": 38.0, "scale": 0.41}]},
                            config=SimpleNamespace(diameter=16.0))
    rng = np.random.default_rng(0)
    as_is, small, other = (rng.random((1, 40, 50)).astype(np.float32) for _ in range(3))
    size.remember(model, [as_is], None)
    size.remember(model, [small], 38.0)
    monkeypatch.setattr(size, "_look", lambda *a: pytest.fail("measured an image the model trained on"))
    assert np.isnan(size.estimate_diameter(model, as_is)) and size.estimate_diameter(model, small) == 38.0
    monkeypatch.setattr(size, "_look", lambda m, crop, scale: 20.0)
    monkeypatch.setattr(size, "measured_diameter", lambda m, chw: 20.0)
    assert size.estimate_diameter(model, other) == 20.0  # never trained on: measured
    size.remember(model, [as_is], 30.0)  # trained on again at another size: the newest record counts
    assert size.estimate_diameter(model, as_is) == 30.0
    for _ in range(size.REMEMBERED_IMAGES):
        size.remember(model, [rng.random((1, 8, 8))], 10.0)
    assert len(model.summary["image_diameters"]) == size.REMEMBERED_IMAGES
    assert size.remembered(model, small) is None  # the oldest records go first


def test_the_fingerprint_knows_the_same_image_in_any_dtype_and_no_other_image():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 4000, (1, 900, 1000)).astype(np.uint16)
    key = size.fingerprint(image)
    assert size.fingerprint(image.astype(np.float32)) == key  # a layer's data or the file's
    assert size.fingerprint(np.repeat(image, 3, 0)) == key  # grey saved as RGB
    assert size.fingerprint(image[:, 1:]) != key  # another crop
    changed = image.copy()
    changed[0, 450, 500] += 1
    assert size.fingerprint(changed) != key
