import torch

from napari_unet.engine.training import augment


def test_affine_keeps_shapes_and_only_moves_labels():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(6, 2, 32, 32)
    ann = torch.zeros(6, 32, 32)
    ann[:, 10:20, 10:20] = 2
    ann[:, 0:5, :] = 1
    x2, ann2 = augment.random_affine(x, ann, gen, p=1.0)
    assert x2.shape == x.shape and ann2.shape == ann.shape
    assert set(torch.unique(ann2).tolist()) <= {0.0, 1.0, 2.0}  # nearest: no invented values


def test_affine_with_p0_is_identity():
    gen = torch.Generator().manual_seed(0)
    x, ann = torch.rand(3, 1, 16, 16), torch.randint(0, 3, (3, 16, 16)).float()
    x2, ann2 = augment.random_affine(x, ann, gen, p=0.0)
    torch.testing.assert_close(x2, x, atol=1e-5, rtol=0)
    assert torch.equal(ann2, ann)


def test_intensity_jitter_is_mild_and_seeded():
    x = torch.rand(8, 1, 8, 8)
    a = augment.random_intensity(x, torch.Generator().manual_seed(1), p=1.0)
    b = augment.random_intensity(x, torch.Generator().manual_seed(1), p=1.0)
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert (a - x).abs().max() < 0.3


def test_appearance_parts_can_be_left_out():
    x = torch.rand(16, 1, 12, 12)
    everything_off = augment.random_appearance(x.clone(), torch.Generator().manual_seed(2), p_invert=1.0, p_blur=1.0,
                                               p_noise=1.0, without=("invert", "gamma", "blur", "noise"))
    torch.testing.assert_close(everything_off, x)
    inverted = augment.random_appearance(x.clone(), torch.Generator().manual_seed(2), p_invert=1.0,
                                         without=("gamma", "blur", "noise"))
    torch.testing.assert_close(inverted, 1 - x)
    only_noise = augment.random_appearance(x.clone(), torch.Generator().manual_seed(2), p_noise=1.0,
                                           without=("invert", "gamma", "blur"))
    assert not torch.equal(only_noise, x) and (only_noise - x).abs().max() < 0.5


def test_unknown_augmentation_part_is_one_clear_message():
    import pytest

    from napari_unet.engine.training.config import TrainConfig
    from napari_unet.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown augmentation part.*Invert.*choose among invert, gamma"):
        TrainConfig(augment_without=("blur", "Invert"))


def test_colour_jitter_moves_each_channel_apart_and_leaves_grey_images_as_they_were():
    """The wide augmentation's per-channel gain and shift (another lab's stain): channels of a colour
    image move apart; a one-channel image draws no numbers for it, so it is augmented exactly as before."""
    grey = torch.rand(8, 1, 12, 12)
    seed = torch.Generator().manual_seed(4)
    torch.testing.assert_close(augment.random_appearance(grey.clone(), seed),
                               augment.random_appearance(grey.clone(), torch.Generator().manual_seed(4),
                                                         without=("colour",)))
    rgb = grey.repeat(1, 3, 1, 1)  # three equal channels
    only_colour = augment.random_appearance(rgb.clone(), torch.Generator().manual_seed(4),
                                            without=("invert", "gamma", "blur", "noise"))
    assert not torch.equal(only_colour[:, 0], only_colour[:, 1])
    assert (only_colour - rgb).abs().max() < 0.35
    torch.testing.assert_close(augment.random_appearance(rgb.clone(), torch.Generator().manual_seed(4),
                                                         without=("invert", "gamma", "blur", "noise", "colour")), rgb)
