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
