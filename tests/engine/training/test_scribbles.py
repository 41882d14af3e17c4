import numpy as np

from napari_unet.engine.training.scribbles import simulate_scribbles
from tests.conftest import make_blobs


def test_scribbles_are_sparse_and_correct():
    _, mask = make_blobs((128, 128), n=12, radius=8, seed=1)
    s = simulate_scribbles(mask, n_objects=5, n_strokes=5, seed=0)
    assert 0 < (s > 0).mean() < 0.05
    assert np.all(mask[s == 2] > 0) and np.all(mask[s == 1] == 0)
    assert len(np.unique(mask[s == 2])) <= 5
    assert np.array_equal(s, simulate_scribbles(mask, n_objects=5, n_strokes=5, seed=0))
