"""Where the model is unsure: a per-pixel uncertainty map, per-object doubt, and ranked regions to
check (the boxes the widget's Next region visits and ``predict --suggestions`` writes).

The estimate is the **margin** of the class probabilities: 1 - (p_first - p_second), 0 where one
class is certain, 1 where the two likeliest tie. It was chosen by measurement over the entropy of
the probabilities, estimates from flipped predictions and the change since an earlier checkpoint
(``benchmarks/suggestions.py``): it ranks erroneous pixels as well as the entropy and nearly as well
as the flips, and the boxes of the flips and of the checkpoints gained less when the user corrected
in them (benchmarks/reports/12-regions-to-check.md, "Corrections drawn more often, estimates from flipped predictions,
boxes on odd objects" and "An earlier checkpoint, and 50 BBBC039 fields"); it costs nothing on top
of a prediction (so every live preview has it) and means the same for any number of classes.

Regions are ranked by the mean margin in a box, and spread over the image: each box is first
looked for away from the earlier ones and off the structures they look at (``spread``). On 8
Usiigaci ``train/`` fields the plain ranking put several boxes on one scratch or one crowded
cluster, and its dabs taught the model less than those of spread boxes (benchmarks/reports/12-regions-to-check.md,
"Boxes spread over the image"). Leaving out the few pixels either side of each outline
(``region_uncertainty``) reached more of the largest errors on Usiigaci ``train/``, but the
retraining protocol could not tell the two apart there, and on BBBC039 nuclei, whose errors sit on
the outlines, it lost (benchmarks/reports/12-regions-to-check.md, "Outlines left out of the ranking"); it stays a
compared estimate.

A box is about one object in size (``region_side``: 32 px on objects under 48 px across, such as
nuclei at 20x, else 64 px), from the size of the objects the prediction shows: a dab in the
largest error of a nucleus-sized box aims better than one in a box of several nuclei, while on
large cells a 32-px box holds only a sliver of an outline (benchmarks/reports/12-regions-to-check.md, "Smaller boxes"
and "Boxes of about one object").
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DEFAULT_REGIONS = 5
DEFAULT_REGION_SIDE = 64  # pixels: a part of a cell; one brush correction
# pixels: about one nucleus at 20x (BBBC039's are 30-37 px across), the side for small objects (region_side)
SMALL_REGION_SIDE = 32
# px: objects whose area-weighted median diameter is below this get SMALL_REGION_SIDE boxes. The two box
# sides were measured on predicted BBBC039 nuclei (31-37 px across) and Usiigaci cells (76-105 px)
SMALL_OBJECT_DIAMETER = 48
REGION_SPREAD = 1 / 3  # boxes first kept this share of the image's shorter side apart
# a box whose mean uncertainty is below this (about 20 undecided pixels of a 64-px box) is not worth a
# look. At 0.02, 300-step BBBC039 models offered 2.2 boxes of 5 on average, while the boxes between
# 0.005 and 0.02 still held errors of up to 280 px (benchmarks/reports/12-regions-to-check.md, "A lower floor for a box").
MIN_REGION_SCORE = 0.005
# px either side of a predicted outline that region_uncertainty leaves out (a compared estimate)
OUTLINE_BAND = 3
OUTLINE_AREA = 64  # px: an area of one class smaller than this is a speck of indecision, not a side of an outline


@dataclass
class Region:
    """A box to check: rows y0:y1, columns x0:x1 (pixels, end exclusive), its mean uncertainty
    ``score`` (0-1), its ``rank`` (1 = look first) and, in stacks, the plane's indices along the
    stack axes (e.g. (z,) or (t, z))."""

    rank: int
    y0: int
    x0: int
    y1: int
    x1: int
    score: float
    plane: tuple = ()


def uncertainty_map(probabilities: np.ndarray) -> np.ndarray:
    """Margin uncertainty of class probabilities (K, ...) (K >= 2, background first): float32 (...)
    in [0, 1], 1 - (largest - second largest probability)."""
    p = np.asarray(probabilities, dtype=np.float32)
    if p.shape[0] < 2:
        raise ValueError(f"need at least two class probabilities, got shape {p.shape}")
    top2 = np.partition(p, p.shape[0] - 2, axis=0)[-2:]
    return np.clip(1.0 - (top2[1] - top2[0]), 0.0, 1.0).astype(np.float32)


def region_uncertainty(probabilities: np.ndarray, band: int = OUTLINE_BAND) -> np.ndarray:
    """The margin away from the outlines, a compared estimate (benchmarks/suggestions.py; the
    product ranks regions by the plain margin): the margin uncertainty of probabilities (K, Y, X),
    float32 (Y, X) in [0, 1], set to 0 on predicted outlines, i.e. within ``band`` px (a square)
    of two classes' areas of at least OUTLINE_AREA px each. Where the likeliest class flips in
    specks the model cannot decide, and that doubt is kept."""
    from scipy import ndimage as ndi

    p = np.asarray(probabilities, dtype=np.float32)
    u = uncertainty_map(p)
    if band <= 0:
        return u
    classes = p.argmax(0)
    size = 2 * band + 1
    near = np.zeros(u.shape, np.uint8)  # how many classes have a sizeable area within the band
    for k in range(p.shape[0]):
        parts, n = ndi.label(classes == k)
        if n == 0:
            continue
        sizeable = (np.bincount(parts.ravel()) >= OUTLINE_AREA)[parts] & (parts > 0)
        near += ndi.maximum_filter(sizeable, size)
    u[near >= 2] = 0
    return u


def entropy_map(probabilities: np.ndarray) -> np.ndarray:
    """Normalised entropy of class probabilities (K, ...): float32 (...) in [0, 1] (a compared estimate)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float32), 1e-7, 1.0)
    return (-(p * np.log(p)).sum(0) / np.log(p.shape[0])).astype(np.float32)


def object_doubt(labels: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
    """Per object of ``labels`` (ids 1..N), the mean uncertainty over the object and its one-pixel
    outline ring (where a wrong outline or split shows): float32 (N + 1,), index = id, [0] = 0."""
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    n = int(labels.max(initial=0))
    if n == 0:
        return np.zeros(1, np.float32)
    grown = ndi.grey_dilation(labels, size=(3,) * labels.ndim)
    owner = np.where(labels > 0, labels, grown)  # each object's pixels plus the ring just outside it
    sums = np.bincount(owner.ravel(), weights=uncertainty.ravel(), minlength=n + 1)
    counts = np.bincount(owner.ravel(), minlength=n + 1)
    doubt = (sums / np.maximum(counts, 1)).astype(np.float32)
    doubt[0] = 0
    return doubt


UNSURE_OBJECT = 0.5  # an object's doubt above it: the model is less sure of it than not (margin under 0.5)
SPECK = 0.25  # of the median object's area: smaller objects are specks


def unsure_objects(labels: np.ndarray, uncertainty: np.ndarray, limit: float = UNSURE_OBJECT,
                   speck: float | None = SPECK) -> np.ndarray:
    """Ids of the objects of ``labels`` whose doubt (``object_doubt``) is above ``limit`` and, unless
    ``speck`` is None, whose area is under ``speck`` times the median object's: the specks the model
    doubts, which *Accept* leaves unannotated. Accepting teaches an object's class, not its outline, so
    what matters is whether it is an object at all. Doubted specks on 4 Usiigaci fields from ``cells``
    (debris and pieces of outline its old masks held) were 12-26 a field, every one of them wrong; a
    doubted object of full size is more often a real object cut in pieces (an H&E-like DSB2018 tile from
    ``nuclei``: 15 doubted, 3 of them specks), whose class accepting gets right (benchmarks/doubt.py)."""
    return doubted_specks(labels, object_doubt(labels, uncertainty), limit, speck)


def doubted_specks(labels: np.ndarray, doubt: np.ndarray, limit: float = UNSURE_OBJECT,
                   speck: float | None = SPECK) -> np.ndarray:
    """``unsure_objects`` from each object's ``doubt`` (``object_doubt``: index = id)."""
    ids = np.flatnonzero(np.asarray(doubt) > limit)
    ids = ids[ids > 0]
    if speck is not None and ids.size:
        areas = np.bincount(np.asarray(labels).ravel().astype(np.int64), minlength=len(doubt))
        ids = ids[areas[ids] < speck * np.median(areas[1:][areas[1:] > 0])]
    return ids


def object_diameter(labels: np.ndarray, instances: bool = True) -> float:
    """The area-weighted median equivalent diameter (px) of the objects in ``labels`` (Y, X) int: the
    diameter of the object that the median foreground pixel lies in; nan with no object.

    instances: ``labels`` are object ids; False: semantic classes, whose connected foreground
    components are the objects. Weighted by area, because a model's many specks of false foreground
    would otherwise decide it (the plain median of 300-step Usiigaci models ranged 13-69 px)."""
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    objects = labels if instances else ndi.label(labels > 0)[0]
    areas = np.bincount(objects.ravel().astype(np.int64, copy=False))[1:]
    areas = areas[areas > 0]
    if len(areas) == 0:
        return float("nan")
    diameters = np.sqrt(4 * areas / np.pi)
    order = np.argsort(diameters)
    median = np.searchsorted(np.cumsum(areas[order]), areas.sum() / 2)
    return float(diameters[order][median])


def region_side(labels: np.ndarray, instances: bool = True) -> int:
    """The side (px) of the boxes to check on a prediction whose objects are ``labels`` (Y, X) int
    (``instances`` as in ``object_diameter``): about one object. SMALL_REGION_SIDE where the objects
    are under SMALL_OBJECT_DIAMETER across, else DEFAULT_REGION_SIDE (also with no object).

    On 49 BBBC039 nuclei fields the user's dabs in 32-px boxes taught the model more than in 64-px
    ones (Dice +0.0041, standard error 0.0015) and more than in random boxes of their size, where
    64-px boxes were level with random ones; on Usiigaci's large cells 32-px boxes lost to 64-px
    ones, since the largest error inside 32 px of a cell's outline is a sliver (benchmarks/reports/12-regions-to-check.md,
    "Smaller boxes" and "Boxes of about one object")."""
    diameter = object_diameter(labels, instances)
    return SMALL_REGION_SIDE if diameter < SMALL_OBJECT_DIAMETER else DEFAULT_REGION_SIDE


def suggest_regions(uncertainty: np.ndarray, n: int = DEFAULT_REGIONS, side: int = DEFAULT_REGION_SIDE,
                    min_score: float = MIN_REGION_SCORE, plane: tuple = (), spread: float = REGION_SPREAD) -> list[Region]:
    """Up to ``n`` boxes of ``side`` pixels to look at, in that order, never overlapping; each the
    free place of highest mean uncertainty. uncertainty: (Y, X) float in [0, 1]. Boxes are clipped
    to the image; fewer come back when the rest of the image is below ``min_score``.

    spread: a box is first looked for away from the earlier ones: its centre ``spread`` x the
    image's shorter side (at least a box side) from theirs, and off the structures they look at
    (where the box mean stays at least half of theirs, connected to them). Five boxes are then not
    five looks at one scratch along the edge or one crowded cluster, which is what the margin alone
    picks on phase-contrast cells, and where the user's dabs taught the model least
    (benchmarks/reports/12-regions-to-check.md, "Boxes spread over the image"). When no such place is left the rest
    only do not overlap. 0: the plain ranking, boxes only kept from overlapping.
    """
    from scipy import ndimage as ndi

    u = np.asarray(uncertainty, dtype=np.float32)
    h, w = u.shape
    sy, sx = min(side, h), min(side, w)
    density = ndi.uniform_filter(u, size=(sy, sx), mode="constant")  # mean over a box centred on each pixel
    apart = max(int(spread * min(h, w)), sy, sx)
    free = np.ones_like(density, dtype=bool)  # centres whose box overlaps none chosen
    distant = np.ones_like(density, dtype=bool)  # centres also ``apart`` from every chosen one
    regions = []
    for rank in range(1, n + 1):
        candidates = np.where(distant if distant.any() else free, density, -1.0)
        cy, cx = np.unravel_index(int(np.argmax(candidates)), candidates.shape)
        y0, x0 = int(np.clip(cy - sy // 2, 0, h - sy)), int(np.clip(cx - sx // 2, 0, w - sx))
        score = float(u[y0:y0 + sy, x0:x0 + sx].mean())
        if candidates[cy, cx] < 0 or score < min_score:
            break
        regions.append(Region(rank, y0, x0, y0 + sy, x0 + sx, round(score, 4), plane))
        # no centre within a box's reach of this one: boxes never overlap
        free[max(0, y0 - sy // 2):y0 + sy + sy // 2, max(0, x0 - sx // 2):x0 + sx + sx // 2] = False
        if spread > 0:
            _keep_away(distant, density, y0 + sy // 2, x0 + sx // 2, apart)
        distant &= free
    return regions


def _keep_away(distant: np.ndarray, density: np.ndarray, cy: int, cx: int, apart: int) -> None:
    """Clear ``distant`` (bool, in place) within ``apart`` px (a square) of the box centred at
    (cy, cx), and on the rest of the structure that box looks at: where the box density stays at
    least half of its own, connected to it."""
    from scipy import ndimage as ndi

    distant[max(0, cy - apart + 1):cy + apart, max(0, cx - apart + 1):cx + apart] = False
    parts, _ = ndi.label(density >= density[cy, cx] / 2)
    if parts[cy, cx]:
        distant[parts == parts[cy, cx]] = False


def rank_regions(regions: list[Region], n: int) -> list[Region]:
    """The ``n`` best of regions from several planes, re-ranked 1..n by score."""
    best = sorted(regions, key=lambda r: -r.score)[:n]
    return [Region(**{**asdict(r), "rank": i}) for i, r in enumerate(best, 1)]


def write_suggestions(path, regions: list[Region], plane_axes: str = "") -> Path:
    """A CSV with header ``rank,y0,x0,y1,x1,score`` (stacks: a ``z`` or ``t`` column, or both, after
    rank: ``plane_axes`` e.g. "Z", "TZ"), one row per region; pixel coordinates, y1 and x1 exclusive."""
    from ..files import atomic_path

    path = Path(path)
    head = ["rank"] + [a.lower() for a in plane_axes] + ["y0", "x0", "y1", "x1", "score"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(head)
        for r in regions:
            out.writerow([r.rank, *r.plane[:len(plane_axes)], r.y0, r.x0, r.y1, r.x1, f"{r.score:.4f}"])
    return path
