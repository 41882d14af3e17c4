"""Batch augmentation on the training device: a small random affine and intensity jitter.

Flips and 90-degree rotations happen while sampling (``sampling.PatchSampler``);
this module adds what needs interpolation, done for the whole batch at once with
``grid_sample`` so it costs little next to the U-Net step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def random_affine(x: torch.Tensor, ann: torch.Tensor, gen: torch.Generator, p: float = 0.5,
                  max_degrees: float = 20.0, scale=(0.85, 1.2), max_shear: float = 0.1):
    """Rotate, scale and shear a random subset of the batch.

    x: (B, C, H, W) float; ann: (B, H, W) float annotation values, or (B, A, H, W) for several
    label maps at once (e.g. annotations and shifted split targets). The image is interpolated
    bilinearly with mirrored borders; annotations by nearest neighbour with zeros outside, and 0
    means "not annotated", so nothing is invented.
    Volumes (B, C, D, H, W) / (B, D, H, W) get the same in-plane transform on every
    slice (a turn about the z axis), which keeps their anisotropy intact (several label maps of
    volumes: (B, A, D, H, W)).
    """
    b = x.shape[0]
    theta = torch.zeros(b, 2, 3)
    theta[:, :, :2] = affine_matrices(b, gen, p, max_degrees, scale, max_shear)
    theta = theta.to(x.device, x.dtype)
    x_shape, ann_shape = x.shape, ann.shape
    x = x.reshape(b, -1, *x_shape[-2:])  # fold depth into channels: one 2D transform per sample
    ann = ann.reshape(b, -1, *ann_shape[-2:])
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    ann = F.grid_sample(ann, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return x.reshape(x_shape), ann.reshape(ann_shape)


def affine_matrices(b: int, gen: torch.Generator, p: float = 0.5, max_degrees: float = 20.0, scale=(0.85, 1.2),
                    max_shear: float = 0.1) -> torch.Tensor:
    """(b, 2, 2) float32 on the CPU: per sample, with probability ``p``, a rotation (uniform within
    ``max_degrees``), a zoom (``scale``: > 1 zooms in) and a shear; else the identity. They map an output
    coordinate (x, y) to where it is read from, as ``affine_grid``'s theta does."""
    rnd = torch.rand(b, 5, generator=gen, device="cpu")
    apply = rnd[:, 0] < p
    angle = (rnd[:, 1] * 2 - 1) * math.radians(max_degrees)
    s = scale[0] + rnd[:, 2] * (scale[1] - scale[0])
    shear = (rnd[:, 3] * 2 - 1) * max_shear
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    m = torch.zeros(b, 2, 2)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin + shear
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[~apply] = torch.eye(2)
    return m


def random_intensity(x: torch.Tensor, gen: torch.Generator, p: float = 0.5, scale=(0.9, 1.1),
                     shift: float = 0.02, gamma=(0.9, 1.15)) -> torch.Tensor:
    """Per-sample contrast scale, brightness shift and gamma on normalised intensities.

    Kept mild on purpose: strong shifts hide the absolute intensity that tells a
    nucleus edge from its dim halo, and cost several Dice points on BBBC039.
    """
    b = x.shape[0]
    per_sample = (b,) + (1,) * (x.ndim - 1)
    rnd = torch.rand(b, 4, generator=gen, device="cpu")
    keep = (rnd[:, 3] >= p).view(per_sample).to(x.device)
    rnd = rnd.to(x.device, x.dtype)
    g = (gamma[0] + rnd[:, 0] * (gamma[1] - gamma[0])).view(per_sample)
    a = (scale[0] + rnd[:, 1] * (scale[1] - scale[0])).view(per_sample)
    c = ((rnd[:, 2] * 2 - 1) * shift).view(per_sample)
    jittered = (torch.sign(x) * x.abs().pow(g)) * a + c
    return torch.where(keep, x, jittered)


def random_appearance(x: torch.Tensor, gen: torch.Generator, p_invert: float = 0.2, gamma=(0.5, 2.0),
                      contrast=(0.5, 1.5), shift: float = 0.15, p_blur: float = 0.3, max_blur: float = 1.5,
                      p_noise: float = 0.3, max_noise: float = 0.08, colour_gain=(0.8, 1.2),
                      colour_shift: float = 0.08, without=()) -> torch.Tensor:
    """Wide appearance changes for a generalist model (other microscopes and stains): per sample,
    inversion (dark objects on a bright background), gamma, contrast and brightness, Gaussian blur
    (sigma up to ``max_blur`` px) and Gaussian noise (up to ``max_noise`` of the normalised range).
    Images of several channels (a colour stain) also get a gain and a shift per channel
    (``colour_gain``, ``colour_shift``): another lab's haematoxylin and eosin, another scanner's white
    balance. One-channel images draw no numbers for it, so their augmentation is what it was.

    x: (B, C, H, W) normalised intensities (about 0..1); volumes (B, C, D, H, W) are blurred in-plane.
    without: parts to leave out, among ``config.WIDE_AUGMENT_PARTS`` ("gamma" also drops contrast and
    brightness), to measure what each adds; the same random numbers are drawn either way.
    """
    if "invert" in without:
        p_invert = 0.0
    if "gamma" in without:
        gamma, contrast, shift = (1.0, 1.0), (1.0, 1.0), 0.0
    if "blur" in without:
        p_blur = 0.0
    if "noise" in without:
        p_noise = 0.0
    if "colour" in without:
        colour_gain, colour_shift = (1.0, 1.0), 0.0
    b = x.shape[0]
    per_sample = (b,) + (1,) * (x.ndim - 1)
    rnd = torch.rand(b, 8, generator=gen, device="cpu")
    noise = torch.randn(x.shape, generator=gen, device="cpu").to(x.device, x.dtype)
    rnd = rnd.to(x.device, x.dtype)

    def pick(column, low, high):
        return (low + rnd[:, column] * (high - low)).view(per_sample)

    x = torch.where((rnd[:, 0] < p_invert).view(per_sample), 1 - x, x)
    if x.shape[1] > 1:  # per channel: (B, C, 1, 1[, 1])
        per_channel = torch.rand(b, x.shape[1], 2, generator=gen, device="cpu").to(x.device, x.dtype)
        per_channel = per_channel.view(b, x.shape[1], *(1,) * (x.ndim - 2), 2)
        gain = colour_gain[0] + per_channel[..., 0] * (colour_gain[1] - colour_gain[0])
        x = x * gain + (per_channel[..., 1] * 2 - 1) * colour_shift
    x = x.clamp(min=0).pow(pick(1, *gamma)) * pick(2, *contrast) + pick(3, -shift, shift)
    sigma = rnd[:, 4] * max_blur
    for i in torch.nonzero(rnd[:, 5] < p_blur).flatten().tolist():
        x[i] = _blur(x[i], float(sigma[i]))
    noisy = (rnd[:, 6] < p_noise).view(per_sample)
    return torch.where(noisy, x + noise * pick(7, 0.0, max_noise), x)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, [D,] H, W) in Y and X (reflect padding); sigma in pixels."""
    if sigma < 0.3:
        return image
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    kernel = torch.exp(-t * t / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    shape = image.shape
    flat = image.reshape(-1, 1, *shape[-2:])
    flat = F.conv2d(F.pad(flat, (radius, radius, 0, 0), mode="reflect"), kernel.view(1, 1, 1, -1))
    flat = F.conv2d(F.pad(flat, (0, 0, radius, radius), mode="reflect"), kernel.view(1, 1, -1, 1))
    return flat.reshape(shape)
