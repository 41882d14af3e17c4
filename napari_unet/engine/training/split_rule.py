"""Which rule splits a model's touching objects: its learned split output, or the distance to the background.

Painted objects teach the split output (``painted.split_targets``). Taught well (the bundled models:
thousands of objects), it splits what the distance rule cannot. Taught briefly, it is worse than no
split at all: a new network's first round of corrections (5 painted objects among 20 strokes, 150
steps) raised the learned distance at object centres to a third of its target, so no centre cleared
the seed level and touching nuclei stayed merged (a DSB2018 stained tile: 45 -> 23 objects, F1 0.78 ->
0.44; the distance rule on the same round's model: 0.78).

So at the end of a round that trained on painted objects, the model splits its own prediction of
those objects both ways, scores each by how well its objects match the painted ones (the mean of each
painted object's best IoU: the F1 at IoU 0.5 of the same objects was 0 both ways there, the 5 objects
a user corrects first being parts of clusters that neither rule split), and keeps the better rule in
its summary ("split_rule"); a later round decides again. The score favours the learned rule (it
trained on these very objects), so it is adopted only when it wins by ``ADOPT_MARGIN``: on 7 stained
DSB2018 tiles, rounds of 5 objects from a new network, it won 7 times by 0.006-0.067 and F1 fell in 5
of those rounds (by up to 0.20). A model that splits with its learned output already (the bundled
ones, or one that adopted it) keeps it: the objects a user corrects are those its split got wrong, so
the distance rule often matched them better, and on 16 DSB2018 images from `nuclei` the 6 that
switched to it ended lower in 5 (by 0.03-0.11 F1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEARNED, DISTANCE = "learned", "distance"
ADOPT_MARGIN = 0.1  # of the mean best IoU, by which the learned rule must win to be adopted
MAX_PLANES = 4  # planes with painted objects that are scored (the first ones): enough, and cheap for stacks


@dataclass
class SplitChoice:
    """rule: LEARNED or DISTANCE; learned, distance: each rule's score (0-1, ``painted_match``)."""

    rule: str
    learned: float
    distance: float


def choose(model, images, objects, scale: float = 1.0, splits_now: bool = False,
           maps_of=None) -> SplitChoice | None:
    """The rule that splits ``model``'s prediction of the painted ``objects`` better; None when there is
    nothing to choose (it splits with its learned output already, it has no split output or no painted
    objects, or it is a 3D model: those keep the learned rule).
    splits_now: the model split with its learned output before this round: it keeps it (None). Else the
    learned rule must win by ``ADOPT_MARGIN``. maps_of: None, or a callable giving plane k's
    ``preview_maps`` by ``model`` (``train.fit`` shares them with the guard).

    images: channels-first planes at the images' size; objects: painted objects (int ids) or None, per
    plane; scale: as the model trained on them.
    """
    from ..prediction.pipeline import labels_from_probabilities, preview_maps

    if splits_now or model.config.split_head == "none" or model.config.spatial_dims != 2:
        return None
    planes = [k for k, o in enumerate(objects) if o is not None and o.any()]
    if not planes:
        return None
    scores = {LEARNED: [], DISTANCE: []}
    for k in planes[:MAX_PLANES]:
        maps = maps_of(k) if maps_of is not None else preview_maps(model, images[k], None, scale=scale)
        obj = objects[k]
        for rule, split in ((LEARNED, maps.split), (DISTANCE, None)):
            labels, _ = labels_from_probabilities(maps.probabilities, True, split=split, head=model.config.split_head)
            scores[rule].append(painted_match(labels, obj))
    learned, distance = float(np.mean(scores[LEARNED])), float(np.mean(scores[DISTANCE]))
    rule = LEARNED if learned >= distance + ADOPT_MARGIN else DISTANCE
    return SplitChoice(rule, round(learned, 4), round(distance, 4))


def painted_match(labels: np.ndarray, objects: np.ndarray) -> float:
    """The mean, over the painted ``objects`` (int ids), of each one's best IoU with an object of ``labels``."""
    o, p = objects.ravel().astype(np.int64), labels.ravel().astype(np.int64)
    n_p = int(p.max()) + 1
    ids = np.unique(o[o > 0])
    inter = np.bincount(o * n_p + p, minlength=(int(o.max()) + 1) * n_p).reshape(-1, n_p)[ids]
    union = np.bincount(o)[ids][:, None] + np.bincount(p, minlength=n_p)[None, :] - inter
    iou = inter[:, 1:] / np.maximum(union[:, 1:], 1)
    return float(iou.max(1).mean()) if n_p > 1 else 0.0
