"""Simulated scribbles: what a user paints in a minute, made from a ground-truth mask.

Used by the benchmarks and to make the demo's pre-painted sample. A user dabs
the brush inside a few objects and draws a few short strokes across the
background, keeping a little away from objects; so do we.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import disk, line

from ..convention import BACKGROUND, FIRST_CLASS


def simulate_scribbles(instance_mask: np.ndarray, *, n_objects: int = 10, dabs_per_object: int = 2,
                       dab_radius: int = 2, n_strokes: int = 10, stroke_length: int = 30,
                       stroke_width: int = 3, margin: int = 2, seed: int = 0) -> np.ndarray:
    """Sparse annotations (H, W) uint8 from an instance mask (H, W), 0 = background.

    Dabs (disks of ``dab_radius``) go inside ``n_objects`` random objects, at least
    ``dab_radius`` from their border; ``n_strokes`` straight strokes of about
    ``stroke_length`` pixels run through background at least ``margin`` pixels
    from any object. Objects get label 2, background 1, everything else 0.
    """
    rng = np.random.default_rng(seed)
    mask = np.asarray(instance_mask)
    out = np.zeros(mask.shape, np.uint8)
    ids = np.unique(mask[mask > 0])
    for obj in rng.permutation(ids)[:n_objects]:
        inner = ndi.binary_erosion(mask == obj, iterations=dab_radius)
        pts = np.argwhere(inner) if inner.any() else np.argwhere(mask == obj)
        for y, x in pts[rng.integers(len(pts), size=dabs_per_object)]:
            rr, cc = disk((y, x), dab_radius + 0.5, shape=mask.shape)
            keep = mask[rr, cc] == obj
            out[rr[keep], cc[keep]] = FIRST_CLASS
    far = ndi.distance_transform_edt(mask == 0) > margin
    starts = np.argwhere(far)
    for _ in range(n_strokes if len(starts) else 0):
        y0, x0 = starts[rng.integers(len(starts))]
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.5, 1.5) * stroke_length
        y1 = int(np.clip(y0 + length * np.sin(angle), 0, mask.shape[0] - 1))
        x1 = int(np.clip(x0 + length * np.cos(angle), 0, mask.shape[1] - 1))
        rr, cc = line(int(y0), int(x0), y1, x1)
        stroke = np.zeros(mask.shape, bool)
        stroke[rr, cc] = True
        stroke = ndi.binary_dilation(stroke, iterations=stroke_width // 2)
        out[stroke & far & (out == 0)] = BACKGROUND
    return out
