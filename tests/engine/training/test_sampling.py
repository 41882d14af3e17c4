import numpy as np

from napari_unet.engine.training import sampling


def test_patch_sampler_volumes():
    rng = np.random.default_rng(0)
    vol = rng.random((1, 6, 40, 40)).astype(np.float32)
    ann = np.zeros((6, 40, 40), np.int16)
    ann[2, 5, 5], ann[4, 30, 30] = 1, 2
    sampler = sampling.PatchSampler([vol], [ann], (4, 16, 16), rng)
    x, y, _ = sampler.sample(8)
    assert x.shape == (8, 1, 4, 16, 16) and y.shape == (8, 4, 16, 16)
    assert all(yi.any() for yi in y)  # every patch holds an annotation
    assert sampler.sample_uniform(2, 32).shape == (2, 1, 6, 32, 32)


def test_patch_sampler_patches_contain_annotations():
    img = np.random.default_rng(0).random((1, 100, 120)).astype(np.float32)
    ann = np.zeros((100, 120), np.int16)
    ann[10, 10], ann[90, 110] = 1, 2
    sampler = sampling.PatchSampler([img], [ann], 32, np.random.default_rng(1))
    x, y, _ = sampler.sample(16)
    assert x.shape == (16, 1, 32, 32) and y.shape == (16, 32, 32)
    assert all((p > 0).any() for p in y)
    assert {1, 2} <= set(np.unique(y).tolist())


def test_patches_cut_on_the_device_have_the_statistics_of_patches_cut_on_the_host():
    """The device sampler draws the same patches (image, class, stroke, pixel, jitter, turns, flips, warp)
    as the host sampler followed by ``augment.random_affine``: the distributions of what a batch holds
    match (Kolmogorov-Smirnov on per-patch intensity mean and spread, annotated and object shares)."""
    import torch
    from scipy import stats

    from napari_unet.engine.training import augment

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:200, :240]
    image = (np.sin(yy / 7.0) * np.cos(xx / 11.0) + 0.3 * rng.random((200, 240))).astype(np.float32)[None]
    ann = np.zeros((200, 240), np.int16)
    ann[20:40, 30:90], ann[120:126, 10:200], ann[150:190, 150:190] = 1, 1, 2
    ann[60:64, 100:104] = 2

    def stats_of(x, a):
        x, a = np.asarray(x, np.float64), np.asarray(a)
        return np.stack([x.mean((1, 2, 3)), x.std((1, 2, 3)), (a > 0).mean((1, 2)), (a == 2).mean((1, 2))], 1)

    host = sampling.PatchSampler([image], [ann], (48, 48), np.random.default_rng(1))
    device = sampling.DeviceSampler([image], [ann], (48, 48), np.random.default_rng(2), torch.device("cpu"),
                                    torch.Generator().manual_seed(2), affine={"scale": (0.85, 1.2)})
    gen = torch.Generator().manual_seed(1)
    old, new = [], []
    for _ in range(150):
        x, a, _ = host.sample(4)
        x, a = augment.random_affine(torch.from_numpy(x), torch.from_numpy(a).float(), gen)
        old.append(stats_of(x, a))
        x, a, _ = device.sample(4)
        new.append(stats_of(x, a))
    old, new = np.concatenate(old), np.concatenate(new)
    for column in range(old.shape[1]):
        assert stats.ks_2samp(old[:, column], new[:, column]).pvalue > 0.001, column
    assert abs(old[:, 2].mean() - new[:, 2].mean()) < 0.03  # the annotated share of a patch


def test_painted_objects_draw_patches_as_a_class_of_their_own_among_an_accepted_prediction():
    ann = np.ones((120, 120), np.uint8)
    targets = np.zeros((120, 120), np.float32)
    for y in range(5, 120, 12):
        for x in range(5, 120, 12):
            ann[y:y + 6, x:x + 6] = 2  # 100 accepted objects
    ann[5:11, 5:11] = 2
    targets[5:11, 5:11] = 0.5  # one of them painted whole (a split target above 0)
    image = np.zeros((1, 120, 120), np.float32)
    sampler = sampling.PatchSampler([image], [ann], 32, np.random.default_rng(0), [targets])
    on_painted = np.mean([targets[tuple(sampler._stroke_point()[1])] > 0 for _ in range(3000)])
    assert 0.28 < on_painted < 0.39  # background, accepted objects, painted objects: a third each
    alone = sampling.PatchSampler([image], [ann], 32, np.random.default_rng(0))  # no split targets: one class
    assert np.mean([targets[tuple(alone._stroke_point()[1])] > 0 for _ in range(3000)]) < 0.02


def test_a_share_of_the_patches_lands_anywhere_while_the_rest_stay_on_the_strokes():
    """``anywhere``: that share of the patches is centred at any pixel of any image (where only the prior
    term teaches), the others on the strokes as before."""
    img = np.zeros((1, 200, 200), np.float32)
    ann = np.zeros((200, 200), np.int16)
    ann[5:8, 5:8] = 1  # one stroke in a corner
    centres = []
    for anywhere in (0.0, 0.5):
        sampler = sampling.PatchSampler([img], [ann], 16, np.random.default_rng(0), anywhere=anywhere)
        centres.append(np.array([sampler._stroke_point()[1] for _ in range(400)]))
    assert np.abs(centres[0] - 6).max() <= 1  # every patch on the stroke
    away = (np.abs(centres[1] - 6).max(1) > 30).mean()
    assert 0.35 < away < 0.6  # about half, spread over the image
    assert centres[1].max(0).min() > 150
