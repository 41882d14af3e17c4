"""Teach it to split: scribbles plus a few whole objects, then one correction round (issue #19).

For each field of a split (BBBC039 nuclei, Usiigaci phase-contrast cells), seeded:
  * scribbles as in scribbles.py (dabs in 10 objects, 10 background strokes), and
  * 5 whole true objects, chosen among those touching another object, painted as objects;
  round 1:  `napari-unet train IMG --labels S --objects O --out M --time-budget 30`,
            `napari-unet predict M IMG --out MASK --instances`;
  round 2:  the 5 true objects worst matched by round 1's prediction (lowest best IoU) painted
            whole as further objects, `train ... --init M --time-budget 15`, predict again.
Baselines in the same run: scribbles only (30 s, the distance rule splits), and an ilastik-style
random forest on the scribbles. Scores: foreground Dice and instance F1 at IoU 0.5.

    python benchmarks/objects.py --data ../shared/data/usiigaci --split val
    python benchmarks/objects.py --data ../shared/data/bbbc039 --split val
    python benchmarks/objects.py --data ../shared/data/usiigaci --split train --limit 4 \
        --heads distance border --seed-levels 0.3 0.4 0.5 0.6     # choosing the head (train fields)
    python benchmarks/objects.py --data ../shared/data/usiigaci --split val --init cells --skip-baselines
    python benchmarks/objects.py --data ../shared/data/bbbc039 --split train --limit 4 --init nuclei \
        --skip-baselines --prior-weights 0 1 3          # choosing the prior weight (train fields)

With ``--init MODEL`` (a bundled name or a file) round 1 fine-tunes that model instead of a new
network, as the widget's Start from does, and "r0" is the model with no strokes at all.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CLI = [sys.executable, "-m", "napari_unet.cli"]


PAINTABLE_FRACTION = 0.05  # of the median true object's area: smaller "objects" are annotation debris


def paintable(truth: np.ndarray) -> np.ndarray:
    """Ids of true objects a user would paint: at least PAINTABLE_FRACTION of the median object's area.

    The Usiigaci masks hold 7-23 fragments of 1-25 px per field (leftovers of the annotation tool,
    about a fifth of their "objects"); a simulated user who paints those as corrections teaches
    nothing (they are the worst matched by any prediction), so they are never chosen. They stay in
    the truth that F1 is scored against."""
    areas = np.bincount(truth.ravel())
    ids = np.flatnonzero(areas)
    ids = ids[ids > 0]
    if ids.size == 0:
        return ids
    return ids[areas[ids] >= PAINTABLE_FRACTION * np.median(areas[ids])]


def touching_objects(truth: np.ndarray) -> np.ndarray:
    """Ids of paintable true objects (``paintable``) that touch another object (8-neighbourhood)."""
    from scipy import ndimage as ndi

    ids = []
    keep = set(paintable(truth).tolist())
    for i, box in enumerate(ndi.find_objects(truth), start=1):
        if box is None or i not in keep:
            continue
        box = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in box)
        ring = ndi.binary_dilation(truth[box] == i, np.ones((3, 3), bool)) & (truth[box] != i)
        if (truth[box][ring] > 0).any():
            ids.append(i)
    return np.asarray(ids, int)


def paint(objects: np.ndarray, truth: np.ndarray, ids) -> np.ndarray:
    """``objects`` with the true objects ``ids`` painted whole, each a new id."""
    out = objects.copy()
    for i in ids:
        out[truth == i] = out.max() + 1
    return out


def worst_matched(pred: np.ndarray, truth: np.ndarray, exclude, n: int = 5) -> list[int]:
    """The n paintable true objects (not in ``exclude``) whose best IoU with a predicted object is lowest."""
    t, p = truth.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    n_t, n_p = int(t.max()) + 1, int(p.max()) + 1
    inter = np.bincount(t * n_p + p, minlength=n_t * n_p).reshape(n_t, n_p)
    area_t, area_p = inter.sum(1), inter.sum(0)
    iou = inter / np.maximum(area_t[:, None] + area_p[None, :] - inter, 1)
    best = iou[:, 1:].max(1) if n_p > 1 else np.zeros(n_t)
    candidates = [i for i in paintable(truth).tolist() if i not in set(exclude)]
    return sorted(candidates, key=lambda i: best[i])[:n]


def cli(*args):
    subprocess.run(CLI + [str(a) for a in args], check=True, stderr=subprocess.DEVNULL)


def scores(labels, truth) -> tuple[float, float]:
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    return dice(labels, truth), instance_f1(labels, truth)


def seed_level_scores(model_path: Path, image, truth, levels) -> dict:
    """F1 of the model's learned split at each seed level (in-process: the same engine functions)."""
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import predict
    from napari_unet.instances import instance_labels

    model = modelfile.load_model(model_path)
    maps = predict.predict_maps(model, image)
    out = {}
    for level in levels:
        from napari_unet.instances import objects as inst

        inst.LEARNED_SEED_LEVEL[model.config.split_head] = level
        labels = instance_labels(maps.probabilities, learned=maps.split, head=model.config.split_head).labels
        out[level] = scores(labels, truth)[1]
    return out


def run_field(path: Path, index: int, work: Path, args) -> dict:
    from napari_unet.engine.disk import io
    from napari_unet.engine.training.scribbles import simulate_scribbles

    sys.path.insert(0, str(Path(__file__).parent))
    from scribbles import random_forest_labels

    image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))
    truth = truth.astype(np.int64)
    scribbles = simulate_scribbles(truth, seed=index)
    rng = np.random.default_rng(index)
    first = rng.permutation(touching_objects(truth))[:5]
    objects = paint(np.zeros(truth.shape, np.int32), truth, first)
    s_path, o_path = io.write_mask(work / "s.tif", scribbles), io.write_mask(work / "o.tif", objects)
    row = {"field": path.stem}
    if not args.skip_baselines:
        row["rf dice"], row["rf f1"] = scores(random_forest_labels(image, scribbles, index), truth)
        cli("train", path, "--labels", s_path, "--out", work / "s.pt", "--time-budget", args.budget)
        cli("predict", work / "s.pt", path, "--out", work / "s_mask.tif", "--instances")
        row["scrib dice"], row["scrib f1"] = scores(io.read_image(work / "s_mask.tif"), truth)
    if args.init:
        cli("predict", args.init, path, "--out", work / "r0.tif", "--instances")
        row["r0 dice"], row["r0 f1"] = scores(io.read_image(work / "r0.tif"), truth)
    weights = args.prior_weights if args.init else [None]
    for head, weight in [(h, w) for h in args.heads for w in weights]:
        tag = "" if len(args.heads) == 1 else f"{head[:4]} "
        tag += "" if len(weights) == 1 else f"pw{weight:g} "
        model, mask = work / f"{head}1.pt", work / f"{head}1.tif"
        start = ["--init", args.init] if args.init else ["--split-head", head]
        prior = [] if weight is None else ["--prior-weight", weight]
        cli("train", path, "--labels", s_path, "--objects", o_path, "--out", model, "--time-budget", args.budget,
            *start, *prior)
        cli("predict", model, path, "--out", mask, "--instances")
        round1 = io.read_image(mask)
        row[f"{tag}r1 dice"], row[f"{tag}r1 f1"] = scores(round1, truth)
        more = worst_matched(round1, truth, first)
        o2_path = io.write_mask(work / "o2.tif", paint(objects, truth, more))
        cli("train", path, "--labels", s_path, "--objects", o2_path, "--init", model, "--out", work / f"{head}2.pt",
            "--time-budget", args.budget_2, *prior)
        cli("predict", work / f"{head}2.pt", path, "--out", work / f"{head}2.tif", "--instances")
        row[f"{tag}r2 dice"], row[f"{tag}r2 f1"] = scores(io.read_image(work / f"{head}2.tif"), truth)
        if args.seed_levels:
            for level, f1 in seed_level_scores(work / f"{head}2.pt", image, truth, args.seed_levels).items():
                row[f"{tag}r2 f1@{level:g}"] = f1
    return row


def main(argv=None):
    sys.path.insert(0, str(Path(__file__).parent))
    from scribbles import print_table

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/usiigaci"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, help="only the first N fields")
    ap.add_argument("--budget", type=float, default=30.0, help="round 1 (and scribbles-only) seconds")
    ap.add_argument("--budget-2", type=float, default=15.0, help="round 2 seconds")
    ap.add_argument("--heads", nargs="+", default=["distance"], choices=["distance", "border"])
    ap.add_argument("--seed-levels", type=float, nargs="*", default=[])
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--init", help="fine-tune this model (e.g. the bundled cells or nuclei) instead of a new one")
    ap.add_argument("--prior-weights", type=float, nargs="+", default=[1.0],
                    help="with --init: train's --prior-weight, one column group per value (default 1)")
    args = ap.parse_args(argv)

    fields = sorted(p for p in Path(args.data, args.split).glob("*.tif") if not p.stem.endswith("_masks"))
    fields = fields[: args.limit] if args.limit else fields
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(fields):
            rows.append(run_field(path, i, Path(tmp), args))
            print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                  file=sys.stderr, flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
