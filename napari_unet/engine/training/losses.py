"""Losses for sparse annotations.

Cross-entropy only sees the painted pixels, so nothing tells the network where
an object ends between a dab inside it and a background stroke a few pixels
away: it grows nuclei into their dim halo (BBBC039 train fields: predicted area
10-20 % too large). The gated CRF loss (Obukhov et al. 2019, "Gated CRF Loss for
Weakly Supervised Semantic Image Segmentation") adds what every user assumes:
nearby pixels that look alike belong to the same class. It penalises class
changes between close pixels of similar intensity, so boundaries settle where
the image has edges (train fields, 30 s: Dice 0.93 -> 0.96).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def sparse_cross_entropy(logits: torch.Tensor, annotations: torch.Tensor, balanced: bool = False,
                         pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on annotated pixels only.

    logits: (B, K, H, W); annotations: (B, H, W) in the label convention
    (0 ignored, 1 background -> class 0, k -> class k-1).
    balanced: each class present in the batch weighs the same, however many of its pixels are
    painted (a few whole objects hold thousands of pixels against a few hundred of background
    strokes); else every annotated pixel weighs the same.
    pixel_weights: None, or (B, H, W) weights of the annotated pixels (e.g. less where the annotation
    only confirms what the starting model predicts); the mean is over the weights.
    """
    target = annotations.long() - 1
    if not bool((target >= 0).any()):
        return logits.sum() * 0.0  # a batch of patches away from every stroke (``TrainConfig.prior_patches``)
    if not balanced and pixel_weights is None:
        return F.cross_entropy(logits.float(), target, ignore_index=-1)
    per_pixel = F.cross_entropy(logits.float(), target, ignore_index=-1, reduction="none")
    weights = (target >= 0).float() if pixel_weights is None else pixel_weights.float() * (target >= 0)
    if not balanced:
        return (per_pixel * weights).sum() / weights.sum().clamp(min=1e-6)
    counts = torch.bincount(target[target >= 0], minlength=logits.shape[1]).float()
    weights = torch.where(counts > 0, 1.0 / counts.clamp(min=1), counts)[target.clamp(min=0)] * weights
    return (per_pixel * weights).sum() / (counts > 0).sum().clamp(min=1)


def _neighbour_offsets(radius: int) -> list[tuple[int, int]]:
    """Half of the offsets within ``radius`` (each unordered pixel pair counted once)."""
    return [(dy, dx) for dy in range(0, radius + 1) for dx in range(-radius, radius + 1)
            if (dy > 0 or dx > 0) and dy * dy + dx * dx <= radius * radius]


def gated_crf_loss(probs: torch.Tensor, image: torch.Tensor, radius: int = 3,
                   sigma_intensity: float = 0.1, sigma_xy: float = 2.0) -> torch.Tensor:
    """Mean over pixel pairs within ``radius`` of affinity * P(different class).

    probs: (B, K, H, W) softmax output; image: (B, C, H, W) normalised intensities.
    Affinity = exp(-|I_i - I_j|^2 / 2 sigma_intensity^2 - d_ij^2 / 2 sigma_xy^2).
    """
    total = probs.new_zeros(())
    norm = 0.0
    h, w = probs.shape[-2:]
    for dy, dx in _neighbour_offsets(radius):
        ys, xs = slice(0, h - dy), slice(max(0, -dx), w - max(0, dx))
        yt, xt = slice(dy, h), slice(max(0, dx), w - max(0, -dx))
        diff = (image[..., ys, xs] - image[..., yt, xt]).pow(2).sum(1)
        spatial = (dy * dy + dx * dx) / (2 * sigma_xy**2)
        affinity = torch.exp(-diff / (2 * sigma_intensity**2) - spatial)
        same = (probs[..., ys, xs] * probs[..., yt, xt]).sum(1)
        total = total + (affinity * (1 - same)).mean()
        norm += math.exp(-spatial)
    return total / max(norm, 1e-12)


def split_loss(logits: torch.Tensor, shifted_targets: torch.Tensor,
               pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy of the split output where painted objects teach it.

    logits: (B, *spatial) the split output before its sigmoid; shifted_targets: (B, *spatial)
    the targets of ``painted.split_targets`` plus 1 (0: unknown, ignored; 1..2: target 0..1);
    pixel_weights: None or (B, *spatial) weights (the mean is over them).
    """
    known = shifted_targets > 0
    if not bool(known.any()):
        return logits.sum() * 0.0  # keeps the graph (and gradient shapes) without teaching anything
    if pixel_weights is None:
        return F.binary_cross_entropy_with_logits(logits.float()[known], shifted_targets[known] - 1.0)
    w = pixel_weights.float()[known]
    per_pixel = F.binary_cross_entropy_with_logits(logits.float()[known], shifted_targets[known] - 1.0,
                                                   reduction="none")
    return (per_pixel * w).sum() / w.sum().clamp(min=1e-6)


def prior_loss(logits: torch.Tensor, prior_logits: torch.Tensor, annotations: torch.Tensor, n_classes: int,
               shifted_targets: torch.Tensor | None = None, split: bool = False) -> torch.Tensor:
    """How far the network strays from the model it started from, where the user painted nothing.

    Fine-tuning a bundled generalist on a few strokes moves all of it, and on touching cells it
    lost more away from the strokes than it gained at them (benchmarks/objects.py). This keeps its
    prediction on unpainted pixels (as "learning without forgetting", Li & Hoiem 2017): the
    KL divergence of the class probabilities from the starting model's, plus, with ``split``, that
    of the split output (a sigmoid) from the starting model's where painted objects teach nothing.
    0 where the network agrees with its start.

    logits, prior_logits: (B, n_outputs, *spatial) of the network and of the frozen starting model
    (class outputs first, then the split output); annotations: (B, *spatial), 0 = not painted;
    shifted_targets: the split targets plus 1 (0: unknown), or None (no painted objects).
    """
    free = annotations == 0
    if not bool(free.any()):
        return logits.sum() * 0.0
    student = torch.log_softmax(logits[:, :n_classes].float(), dim=1)
    teacher = torch.log_softmax(prior_logits[:, :n_classes].float(), dim=1)
    kl = (teacher.exp() * (teacher - student)).sum(1)
    loss = kl[free].mean()
    if split and logits.shape[1] > n_classes:
        unknown = free if shifted_targets is None else shifted_targets == 0
        if bool(unknown.any()):
            prior_split = prior_logits[:, n_classes].float()[unknown]
            target = torch.sigmoid(prior_split)
            # minus the target's own entropy: a KL divergence too, 0 where the network agrees
            loss = loss + (F.binary_cross_entropy_with_logits(logits[:, n_classes].float()[unknown], target)
                           - F.binary_cross_entropy_with_logits(prior_split, target))
    return loss
