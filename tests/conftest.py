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
