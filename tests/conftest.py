"""Shared test fixtures: tiny synthetic images so the suite stays fast and offline."""

from __future__ import annotations

import numpy as np
import pytest


def make_blobs(shape=(64, 64), n=6, radius=6, seed=0):
    """A uint16 image of bright disks on a dim noisy background, and its instance mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    mask = np.zeros(shape, np.uint16)
    for i in range(n):
        cy, cx = rng.integers(radius, shape[0] - radius), rng.integers(radius, shape[1] - radius)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        mask[disk & (mask == 0)] = i + 1
    image = 200 + 800 * (mask > 0) + rng.normal(0, 40, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), mask


def scribbles_from(mask, every=7):
    """Sparse annotations: a grid of single pixels, 1 on background and 2 on objects."""
    ann = np.zeros(mask.shape, np.uint8)
    ann[::every, ::every] = np.where(mask[::every, ::every] > 0, 2, 1)
    return ann


@pytest.fixture
def blobs():
    image, mask = make_blobs()
    return image, mask, scribbles_from(mask)


@pytest.fixture(autouse=True)
def _autosave_in_tmp(tmp_path, monkeypatch):
    """Autosaves of in-memory images go to a per-test folder, never the user's cache."""
    monkeypatch.setenv("NAPARI_UNET_AUTOSAVE", str(tmp_path / "autosave"))


def make_spheres(shape=(12, 48, 48), n=5, radius=7, z_step=2.0, seed=0):
    """A uint16 volume (Z, Y, X) of bright ellipsoids, ``z_step`` times coarser in Z, and its mask."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    mask = np.zeros(shape, np.uint16)
    rz = max(radius / z_step, 1.0)
    for i in range(n):
        cz = rng.uniform(rz, shape[0] - rz)
        cy, cx = rng.uniform(radius, shape[1] - radius), rng.uniform(radius, shape[2] - radius)
        ball = ((zz - cz) * z_step) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        mask[ball & (mask == 0)] = i + 1
    image = 200 + 800 * (mask > 0) + rng.normal(0, 40, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), mask


def volume_scribbles(mask, planes, every=5):
    """Annotations on the given Z planes only (a grid of pixels, 1 background, 2 object)."""
    ann = np.zeros(mask.shape, np.uint8)
    for z in planes:
        ann[z] = scribbles_from(mask[z], every)
    return ann
