"""Scores against a ground-truth mask: foreground Dice and instance F1 at an IoU threshold."""

from __future__ import annotations

import numpy as np


def dice(pred, truth) -> float:
    """Foreground Dice of two label images (anything > 0 is foreground); 1.0 when both are empty."""
    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(p, t).sum() / total)


def instance_f1(pred, truth, iou_threshold: float = 0.5) -> float:
    """F1 of object matching: a predicted and a true object match when their IoU > threshold.

    With a threshold >= 0.5 each object matches at most one other, so counting pairs is exact.
    """
    pred, truth = np.asarray(pred).ravel(), np.asarray(truth).ravel()
    _, p = np.unique(pred, return_inverse=True)
    _, t = np.unique(truth, return_inverse=True)
    n_p, n_t = p.max() + 1, t.max() + 1
    inter = np.bincount(p * n_t + t, minlength=n_p * n_t).reshape(n_p, n_t)
    area_p, area_t = inter.sum(1), inter.sum(0)
    union = area_p[:, None] + area_t[None, :] - inter
    iou = inter / np.maximum(union, 1)
    has_bg_p, has_bg_t = (pred == 0).any(), (truth == 0).any()
    iou = iou[1 if has_bg_p else 0:, 1 if has_bg_t else 0:]
    tp = int((iou > iou_threshold).sum())
    n_pred, n_true = iou.shape
    return 1.0 if n_pred + n_true == 0 else 2 * tp / (n_pred + n_true)
