import numpy as np


def _smoothed_distance(mask, sigma):
    from scipy import ndimage as ndi

    return ndi.gaussian_filter(ndi.distance_transform_edt(mask), sigma)


def test_h_maxima_by_component_matches_scikit_image():
    import pytest
    from scipy import ndimage as ndi
    from skimage import morphology

    from napari_unet.engine.disk.io import read_image
    from napari_unet.instances.hmaxima import h_maxima
    from napari_unet.sample_data import sample_paths

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


def test_h_maxima_of_a_large_component_in_pieces_is_the_same(monkeypatch):
    from scipy import ndimage as ndi

    from napari_unet.engine.disk.io import read_image
    from napari_unet.instances import hmaxima
    from napari_unet.sample_data import sample_paths

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
            monkeypatch.setattr(hmaxima, "LARGE_COMPONENT", 10**9)
            expected = hmaxima.h_maxima(image, h)
            monkeypatch.setattr(hmaxima, "LARGE_COMPONENT", 64)  # every component in pieces
            np.testing.assert_array_equal(hmaxima.h_maxima(image, h), expected)
    _, n = ndi.label(cases[2] > 0, structure=np.ones((3, 3)))
    _, pieces = ndi.label(cases[2] > 0.5, structure=np.ones((3, 3)))
    assert n < 5 < pieces  # the chain is one long component (what needs pieces), in many pieces
    assert hmaxima.h_maxima(cases[2], 1.0).sum() > 10
    assert hmaxima.h_maxima(ridge, 1.0)[4, 10] == 0 and hmaxima.h_maxima(far_bump, 1.0)[4, 10] == 1
