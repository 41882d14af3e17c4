"""The regression guard: a round's model becomes current only if it does at least as well as the model it
started from on what the user has confirmed.

What the user confirmed is what they painted: whole objects (each an instance, their outline meant)
and background (strokes, erased objects, an accepted prediction's background). Both models are
scored there the way the user sees them (the instance step of the prediction): instance F1 at IoU
0.5 of the painted objects against the predicted objects that lie mostly inside the painted area,
or, with no painted objects, the share of painted pixels predicted as painted. Checked regions
(held out of training) are scored by the validation score, which the widget also shows.

The candidate trained on these very annotations, so its score there is an upper bound of its worth:
a candidate that does worse than the earlier model even on what it was taught has lost what the
earlier model did right, and is not made current (``Verdict.keep_candidate``); the user is told with
both scores, and the candidate stays in the history (the widget) or is not written (``train
--keep-better``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TOLERANCE = 0.005  # a candidate this much below the earlier model still counts as level (noise)
MAX_PLANES = 4  # training planes scored (the first ones): enough to see a loss, cheap for stacks


@dataclass
class Verdict:
    """current, candidate: the scores (0-1) of the earlier model and of the round's model on the confirmed
    annotations; what: "F1 on your confirmed objects" or "agreement with your strokes"; keep_candidate:
    the round's model is at least level with the earlier one (within ``TOLERANCE``)."""

    current: float
    candidate: float
    what: str
    keep_candidate: bool

    @property
    def message(self) -> str:
        if self.keep_candidate:
            return f"{self.what}: {self.candidate:.2f} (was {self.current:.2f})"
        return (f"kept the earlier model: {self.what} {self.current:.2f} vs {self.candidate:.2f}; the new one is in "
                "the history")


def confirmed_score(model, images, annotations, objects, scale: float = 1.0, maps_of=None) -> tuple[float, str]:
    """(score, what) of ``model`` on the painted annotations of the training planes (see the module docstring).

    images: channels-first planes; annotations: class annotations (objects merged in); objects: painted
    whole objects (int ids) or None, per plane. scale: as the model was trained on them. maps_of: None, or
    a callable giving plane k's ``preview_maps`` by ``model`` (made already: ``train.fit`` shares them).
    """
    from ..model.unet import learned_split
    from ..prediction.pipeline import labels_from_probabilities, preview_maps

    f1s, right, total = [], 0, 0
    for k, (image, ann, obj) in enumerate(list(zip(images, annotations, objects))[:MAX_PLANES]):
        maps = maps_of(k) if maps_of is not None else preview_maps(model, image, None, scale=scale)
        split = maps.split if learned_split(model) else None
        labels, _ = labels_from_probabilities(maps.probabilities, True, split=split, head=model.config.split_head)
        painted = np.asarray(ann) > 0
        right += int(((labels > 0) == (np.asarray(ann) >= 2))[painted].sum())
        total += int(painted.sum())
        if obj is not None and obj.any():
            f1s.append(painted_objects_f1(labels, painted, obj))
    if f1s:
        return float(np.mean(f1s)), "F1 on your confirmed objects"
    return (right / total if total else float("nan")), "agreement with your strokes"


def painted_objects_f1(labels: np.ndarray, painted: np.ndarray, objects: np.ndarray) -> float:
    """Instance F1 (IoU 0.5) of the painted ``objects`` against the predicted ``labels`` that lie mostly
    inside the ``painted`` pixels (bool): what the user sees of their confirmed objects."""
    from ..prediction.metrics import instance_f1

    inside = np.bincount(labels[painted].ravel(), minlength=int(labels.max()) + 1)
    sizes = np.bincount(labels.ravel(), minlength=int(labels.max()) + 1)
    keep = np.flatnonzero(inside > 0.5 * np.maximum(sizes, 1))
    shown = np.where(np.isin(labels, keep[keep > 0]), labels, 0)
    return instance_f1(shown, objects)


def compare(current, candidate, images, annotations, objects, scale: float = 1.0, candidate_maps=None) -> Verdict:
    """Score the earlier model and the round's model on the same confirmed annotations (candidate_maps: as
    ``confirmed_score``'s maps_of, for the candidate)."""
    before, what = confirmed_score(current, images, annotations, objects, scale)
    after, _ = confirmed_score(candidate, images, annotations, objects, scale, candidate_maps)
    keep = not (np.isfinite(before) and np.isfinite(after)) or after >= before - TOLERANCE
    return Verdict(round(float(before), 4), round(float(after), 4), what, bool(keep))
