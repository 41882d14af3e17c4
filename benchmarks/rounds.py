"""The loop as a user runs it (issue #44): rounds of corrections and Train, on held-out fields.

For each field of a split, from a start (a bundled model, ``scratch``: a new network trained on the
scribbles of ``scribbles.py`` as round 0, or ``auto``: the same round 0 from the start the widget's
Start "auto" chooses by those scribbles), ``--rounds`` rounds, each:
  * the 5 true objects worst matched by the current prediction (lowest best IoU; an object of at least
    a quarter of the median size: a user paints cells, not specks) are painted whole as objects;
  * up to 3 predicted objects that cover no true object (under 5 % of their pixels) are erased:
    painted background (background strokes where there were none);
  * arm ``accept``: the user also accepts the rest of the prediction (what *Accept the whole
    prediction* does): every predicted object not corrected becomes annotated foreground (``--accept-as``),
    all else background, less a band along the accepted outlines (``painted.accepted_pixels``, ``--band``)
    and less the specks the model doubts (``uncertainty.unsure_objects``, ``--unsure``, ``--speck``);
  * ``napari-unet train IMAGE --labels L --objects O --init CURRENT --time-budget 15`` (in-process CLI
    calls; ``--keep-better`` with ``--guard``), ``napari-unet predict ... --instances``, scored.
Earlier rounds' annotations stay. Arms: ``objects`` (objects only) and ``accept``. In the same run:
the forest (``scribbles.random_forest_labels``) given each round's annotations, and the ceiling:
``--ceiling`` seconds from the same start on the field's whole true mask, scored on that field.
Scores: foreground Dice and instance F1 at IoU 0.5. Prints per-round means and per-field rows, and
writes ``--out`` (JSON lines) and a PNG of the curves (``--png``).

    python benchmarks/rounds.py --data ../shared/data/usiigaci --split val --start cells
    python benchmarks/rounds.py --data ../shared/data/bbbc039 --split val --start nuclei
    python benchmarks/rounds.py --data ../shared/data/dsb2018 --split val --start nuclei --limit 16
    python benchmarks/rounds.py --data ../shared/data/dsb2018 --split val --start nuclei --kind stained --forest
    python benchmarks/rounds.py --data ../shared/data/usiigaci --split val --start scratch
    python benchmarks/rounds.py ... --steps 150        # step counts instead of seconds (repeatable)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ARMS = ("objects", "accept", "view")
PAINTABLE_FRACTION = 0.25  # of the median true object's area: smaller pieces are not painted
FALSE_COVER = 0.05  # a predicted object with less of its pixels on true objects covers no object


def paintable(truth: np.ndarray) -> np.ndarray:
    areas = np.bincount(truth.ravel())
    ids = np.flatnonzero(areas)
    ids = ids[ids > 0]
    return ids[areas[ids] >= PAINTABLE_FRACTION * np.median(areas[ids])] if ids.size else ids


def best_iou(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per true id (index), its best IoU with a predicted object."""
    t, p = truth.ravel().astype(np.int64), pred.ravel().astype(np.int64)
    n_t, n_p = int(t.max()) + 1, int(p.max()) + 1
    inter = np.bincount(t * n_p + p, minlength=n_t * n_p).reshape(n_t, n_p)
    union = inter.sum(1)[:, None] + inter.sum(0)[None, :] - inter
    iou = inter / np.maximum(union, 1)
    return iou[:, 1:].max(1) if n_p > 1 else np.zeros(n_t)


def worst_matched(pred, truth, exclude, n=5) -> list[int]:
    best = best_iou(truth, pred)
    return sorted((i for i in paintable(truth).tolist() if i not in exclude), key=lambda i: best[i])[:n]


def picked(pred, truth, exclude, pick: str, doubt=None, seed=0, n=5) -> list[int]:
    """The true objects the simulated user paints: the ``n`` worst matched (``worst``), or those under the
    ``n`` predicted objects the prediction doubts most (``doubt``: ``uncertainty.object_doubt``) or under
    ``n`` random predicted objects (``random``): for each, the paintable true object it overlaps most."""
    if pick == "worst":
        return worst_matched(pred, truth, exclude, n)
    ids = np.unique(pred[pred > 0])
    if pick == "doubt":
        order = ids[np.argsort(-doubt[ids], kind="stable")]
    else:
        order = np.random.default_rng(seed).permutation(ids)
    allowed, chosen = set(paintable(truth).tolist()) - set(exclude), []
    for i in order:
        under = truth[pred == i]
        under = under[np.isin(under, list(allowed - set(chosen)))]
        if under.size:
            chosen.append(int(np.bincount(under).argmax()))
        if len(chosen) == n:
            break
    return chosen


def doubt_precision(pred, truth, doubt, top: int = 10) -> tuple[float, float]:
    """(share of wrong objects among the ``top`` most doubtful predicted objects, share over all of them):
    a predicted object is wrong when its best IoU with a true object is under 0.5."""
    ids = np.unique(pred[pred > 0])
    if not ids.size:
        return float("nan"), float("nan")
    wrong = best_iou(pred, truth)[ids] < 0.5
    order = np.argsort(-doubt[ids], kind="stable")
    return float(wrong[order[:top]].mean()), float(wrong.mean())


def false_objects(pred, truth, n=3) -> list[int]:
    """Up to n predicted objects with under FALSE_COVER of their pixels on true objects, largest first."""
    ids, counts = np.unique(pred[pred > 0], return_counts=True)
    on = np.bincount(pred[truth > 0].ravel(), minlength=int(pred.max()) + 1)
    false = [(c, i) for i, c in zip(ids, counts) if on[i] < FALSE_COVER * c]
    return [int(i) for _, i in sorted(false, reverse=True)[:n]]


def correct(pred, truth, annotations, objects, painted_ids, arm, pick_rule="worst", doubt=None, seed=0,
            accept_as="objects", band=None, unsure=None, speck=None):
    """One round of a simulated user: returns new (annotations, objects, painted ids). accept_as: what the
    accept arm makes of the predicted objects it takes: painted objects (each teaching the split) or
    class annotations alone. unsure, speck: accepting leaves out the objects whose ``doubt`` is above
    ``unsure`` and whose area is under ``speck`` times the median object's (None: the widget's,
    ``uncertainty.UNSURE_OBJECT`` and ``SPECK``; ``unsure`` 1: none left out; ``speck`` 0: any size)."""
    from napari_unet.engine.training.painted import add_objects

    pick = picked(pred, truth, painted_ids, pick_rule, doubt, seed)
    erased = false_objects(pred, truth)
    annotations = annotations.copy()
    truth_objects = np.isin(truth, pick)
    area = np.ones(pred.shape, bool) if arm == "accept" else view_around(truth, pick) if arm == "view" else None
    if area is not None:  # of it, what the widget's Accept teaches (``painted.accepted_pixels``)
        from napari_unet.engine.prediction.uncertainty import SPECK, UNSURE_OBJECT, doubted_specks
        from napari_unet.engine.training.painted import OUTLINE_BAND, accepted_pixels

        limit, speck = UNSURE_OBJECT if unsure is None else unsure, SPECK if speck is None else speck or None
        left_out = doubted_specks(pred, doubt, limit, speck) if doubt is not None else ()
        taught = accepted_pixels(pred, area, OUTLINE_BAND if band is None else band, unsure=left_out)
        overlap = np.bincount(pred[np.isin(truth, list(painted_ids) + pick)], minlength=int(pred.max()) + 1)
        sizes = np.bincount(pred.ravel(), minlength=int(pred.max()) + 1)
        inside = np.bincount(pred[area], minlength=int(pred.max()) + 1)
        kept = [i for i in np.unique(pred[pred > 0]) if i not in erased and overlap[i] < 0.5 * sizes[i]
                and inside[i] > 0.5 * sizes[i]]
        if accept_as == "objects":
            objects, _ = add_objects(objects, pred, kept)
        else:
            annotations[np.isin(pred, kept) & (objects == 0) & taught] = 2
    for i in pick:
        objects = np.where(truth == i, objects.max() + 1, objects)
    annotations[np.isin(pred, erased) & (objects == 0)] = 1
    if area is not None:
        annotations[taught & (objects == 0) & (annotations == 0)] = 1
    annotations[truth_objects] = 0  # what is under a painted object is that object (no background under it)
    annotations[(objects > 0) & (annotations == 1)] = 0
    return annotations, objects.astype(np.int32), set(painted_ids) | set(pick)


def view_around(truth, pick, objects_across: float = 4.0) -> np.ndarray:
    """What a user looks at when correcting the ``pick`` objects: a square of about ``objects_across``
    median object diameters around each (what *Accept the view* takes)."""
    areas = np.bincount(truth.ravel())[1:]
    side = int(objects_across * np.sqrt(4 * np.median(areas[areas > 0]) / np.pi))
    area = np.zeros(truth.shape, bool)
    for i in pick:
        cy, cx = np.argwhere(truth == i).mean(0).astype(int)
        area[max(cy - side // 2, 0):cy + side // 2, max(cx - side // 2, 0):cx + side // 2] = True
    return area


def cli(*args) -> None:
    from napari_unet import cli as napari_unet_cli

    code = napari_unet_cli.main([str(a) for a in args])
    if code not in (0,):
        raise RuntimeError(f"napari-unet {' '.join(map(str, args[:2]))} exited with {code}")


def scores(labels, truth) -> tuple[float, float]:
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    return dice(labels, truth), instance_f1(labels, truth)


def match_counts(labels, truth) -> list[int]:
    """[matched, predicted, true] objects (a match: IoU > 0.5, as ``instance_f1``), to pool F1 over fields:
    on a field of 16 nuclei one nucleus crossing IoU 0.5 moves its F1 by 0.06, so per-field F1 is a
    coarse yardstick of a round; the pooled F1 of all fields' objects is not."""
    return [int((best_iou(truth, labels)[1:] > 0.5).sum()), len(np.unique(labels[labels > 0])),
            len(np.unique(truth[truth > 0]))]


def sized_counts(labels, truth) -> list[int]:
    """``match_counts`` over the objects a user paints (``paintable``: at least a quarter of the median true
    object): true objects smaller are left out, and so are the predicted objects lying mostly on them or
    matching them. Tiny true pieces (30-40 px against a median of 700) sit at the prediction's smallest
    object size (30 px): four of them crossing it and IoU 0.5 moved a 22-nucleus field's F1 by 0.115 in a
    round (benchmarks/reports/13-rounds.md, "Where images still fall")."""
    keep = paintable(truth)
    tiny = np.isin(truth, keep, invert=True) & (truth > 0)
    ids, sizes = np.unique(labels[labels > 0], return_counts=True)
    on_tiny = np.bincount(labels[tiny].ravel(), minlength=int(labels.max()) + 1)[ids]
    best = best_iou(labels, np.where(tiny, truth, 0))[ids] if tiny.any() else np.zeros(ids.size)
    shown = np.where(np.isin(labels, ids[(on_tiny <= 0.5 * sizes) & (best <= 0.5)]), labels, 0)
    matched = int((best_iou(np.where(np.isin(truth, keep), truth, 0), shown)[keep] > 0.5).sum()) if keep.size else 0
    return [matched, len(np.unique(shown[shown > 0])), int(keep.size)]


def pooled_f1(counts) -> float:
    """F1 of summed ``match_counts``."""
    matched, predicted, true = np.sum(counts, 0)
    return 2 * matched / max(predicted + true, 1)


def train_args(args) -> list:
    return ["--steps", args.steps] if args.steps else ["--time-budget", args.budget]


def forest(image, annotations, objects, seed) -> np.ndarray:
    sys.path.insert(0, str(HERE))
    from scribbles import random_forest_labels

    grey = image if image.ndim == 2 else image[..., :3] @ np.array([0.2125, 0.7154, 0.0721])
    labels = np.where(objects > 0, 2, annotations).astype(np.uint8)
    return random_forest_labels(grey, labels, seed) if {1, 2} <= set(np.unique(labels)) else np.zeros_like(objects)


def run_field(path: Path, index: int, work: Path, arm: str, args) -> dict:
    """Rounds 0..R of one field and one arm: {"dice": [...], "f1": [...], "forest_f1": [...], "kept": [...]}."""
    from napari_unet.engine.disk import io
    from napari_unet.engine.training.scribbles import simulate_scribbles

    image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif")).astype(np.int64)
    image_path = path
    annotations = np.zeros(truth.shape, np.uint8)
    objects = np.zeros(truth.shape, np.int32)
    model = work / "r0.pt"
    if args.start in ("scratch", "auto"):  # round 0: a round on scribbles, from a new network or the chosen start
        annotations = simulate_scribbles(truth, seed=index)
        io.write_mask(work / "l.tif", annotations)
        init = ["--init", "auto"] if args.start == "auto" else []
        cli("train", image_path, "--labels", work / "l.tif", *init, "--out", model, *train_args(args), "--seed", index)
    else:
        model = args.start
    pred, doubt = predict(model, image_path, work)
    row = {"field": path.stem, "arm": arm, "pick": args.pick}
    row["dice"], row["f1"] = [[v] for v in scores(pred, truth)]
    row["counts"] = [match_counts(pred, truth)]
    row["sized"] = [sized_counts(pred, truth)]
    row["doubt_top10_wrong"], row["all_wrong"] = doubt_precision(pred, truth, doubt)
    row["forest_f1"], row["kept"], row["steps"], row["split_rule"] = [None], [], [], []
    painted_ids: set = set()
    for r in range(1, args.rounds + 1):
        annotations, objects, painted_ids = correct(pred, truth, annotations, objects, painted_ids, arm, args.pick,
                                                    doubt, seed=index + 100 * r, accept_as=args.accept_as,
                                                    band=args.band, unsure=args.unsure, speck=args.speck)
        io.write_mask(work / "l.tif", annotations)
        io.write_mask(work / "o.tif", objects)
        new = work / f"r{r}.pt"
        guard = ["--keep-better"] if args.guard else []
        cli("train", image_path, "--labels", work / "l.tif", "--objects", work / "o.tif", "--init", model, "--out",
            new, *train_args(args), "--seed", index + 100 * r, *guard)
        from napari_unet.engine.model import modelfile

        trained = modelfile.load_model(new)
        row["kept"].append(bool(trained.summary.get("kept_earlier")))
        row["steps"].append(trained.summary.get("rounds", [{}])[-1].get("steps"))
        row["split_rule"].append(trained.summary.get("split_rule", "learned" if trained.summary.get("object_pixels")
                                                      else "distance"))
        row.setdefault("split_scores", []).append(trained.summary.get("rounds", [{}])[-1].get("split_rule"))
        model = new
        pred, doubt = predict(model, image_path, work)
        d, f = scores(pred, truth)
        row["dice"].append(d)
        row["f1"].append(f)
        row["counts"].append(match_counts(pred, truth))
        row["sized"].append(sized_counts(pred, truth))
        row["forest_f1"].append(scores(forest(image, annotations, objects, index), truth)[1] if args.forest else None)
    return row


def predict(model, image_path: Path, work: Path):
    """The CLI's instances of the image and each object's doubt (``uncertainty.object_doubt`` of the margin)."""
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction.uncertainty import object_doubt, uncertainty_map

    cli("predict", model, image_path, "--out", work / "p.tif", "--instances", "--probabilities", work / "q.tif")
    pred = io.read_image(work / "p.tif").astype(np.int64)
    return pred, object_doubt(pred, uncertainty_map(io.read_image(work / "q.tif")))


def ceiling(path: Path, index: int, work: Path, args) -> dict:
    """The start trained ``--ceiling`` seconds on the field's whole true mask, scored on that field."""
    from napari_unet.engine.disk import io

    truth = io.read_image(path.with_name(path.stem + "_masks.tif")).astype(np.int64)
    io.write_mask(work / "l.tif", np.where(truth > 0, 0, 1).astype(np.uint8))
    io.write_mask(work / "o.tif", truth.astype(np.int32))
    start = [] if args.start == "scratch" else ["--init", args.start]  # auto: chosen on the whole truth
    budget = ["--steps", args.ceiling_steps] if args.ceiling_steps else ["--time-budget", args.ceiling]
    cli("train", path, "--labels", work / "l.tif", "--objects", work / "o.tif", *start, "--out", work / "c.pt",
        *budget, "--seed", index)
    cli("predict", work / "c.pt", path, "--out", work / "c.tif", "--instances")
    d, f = scores(io.read_image(work / "c.tif").astype(np.int64), truth)
    return {"field": path.stem, "arm": "ceiling", "dice": [d], "f1": [f]}


def summarize(rows, rounds) -> None:
    print("\n| arm | metric | " + " | ".join(f"round {r}" for r in range(rounds + 1)) + " |")
    print("|---|---|" + "---|" * (rounds + 1))
    for arm in [a for a in ARMS if any(r["arm"] == a for r in rows)]:
        group = [r for r in rows if r["arm"] == arm]
        for metric in ("dice", "f1", "forest_f1"):
            values = [[v for v in r[metric]] for r in group]
            if any(v is None for row in values for v in row[1:]):
                continue
            table = np.array([[np.nan if v is None else v for v in row] for row in values], float)
            means = [np.nanmean(c) if np.isfinite(c).any() else np.nan for c in table.T]  # the forest has no round 0
            print(f"| {arm} | {metric} | " + " | ".join("" if np.isnan(m) else f"{m:.3f}" for m in means) + " |")
        if all("counts" in r for r in group):
            pooled = [pooled_f1([r["counts"][k] for r in group]) for k in range(rounds + 1)]
            print(f"| {arm} | pooled F1 (all fields' objects) | " + " | ".join(f"{v:.3f}" for v in pooled) + " |")
            lost = min(min(np.diff([c[0] for c in r["counts"]])) for r in group)
            print(f"| {arm} | most matched objects a field lost in a round | {lost:+d} |")
        drops = [min(np.diff(r["f1"])) for r in group]
        kept = sum(sum(r["kept"]) for r in group)
        print(f"| {arm} | worst per-field round change of F1 | {min(drops):+.3f} | kept the earlier model: {kept} |")
        if all("sized" in r for r in group):  # objects of a paintable size only (``sized_counts``)
            sized = [[pooled_f1([c]) for c in r["sized"]] for r in group]
            print(f"| {arm} | F1, objects of a paintable size | " + " | ".join(f"{v:.3f}" for v in np.mean(sized, 0)) + " |")
            print(f"| {arm} | worst per-field round change of it | {min(min(np.diff(f)) for f in sized):+.3f} |")
    doubts = [(r["doubt_top10_wrong"], r["all_wrong"]) for r in rows if "doubt_top10_wrong" in r]
    if doubts:
        top, every = np.nanmean(np.array(doubts, float), 0)
        print(f"\nwrong objects (best IoU < 0.5) among the 10 most doubtful of round 0: {top:.2f}, among all: {every:.2f}")
    ceil = [r for r in rows if r["arm"] == "ceiling"]
    if ceil:
        print(f"\nceiling (whole true mask, scored on its own field): Dice {np.mean([r['dice'][0] for r in ceil]):.3f}, "
              f"F1 {np.mean([r['f1'][0] for r in ceil]):.3f} ({len(ceil)} fields)")
    print("\nper field (F1 by round):")
    for r in rows:
        rules = " ".join(rule[0] for rule in r.get("split_rule", []))  # l: learned split, d: distance rule
        sized = "  sized " + " ".join(f"{pooled_f1([c]):.3f}" for c in r["sized"]) if "sized" in r else ""
        print(f"  {r['arm']:8s} {r['field']:30s} " + " ".join(f"{v:.3f}" for v in r["f1"]) + (f"  split {rules}" if rules else "")
              + sized)


def plot(rows, rounds, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes, ("dice", "f1")):
        for arm, colour in zip(ARMS, ("tab:blue", "tab:orange")):
            group = [r[metric] for r in rows if r["arm"] == arm]
            if not group:
                continue
            for values in group:
                ax.plot(range(len(values)), values, color=colour, alpha=0.25, lw=1)
            ax.plot(range(rounds + 1), np.mean(group, 0), color=colour, lw=2.5, label=arm)
        ceil = [r[metric][0] for r in rows if r["arm"] == "ceiling"]
        if ceil:
            ax.axhline(np.mean(ceil), color="k", ls=":", label="ceiling")
        ax.set_xlabel("round")
        ax.set_ylabel(metric)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    print(f"wrote {png}")


def field_kind(path: Path) -> str:
    """The kind of a field (``bundled.kind_of``), from its image and masks."""
    from bundled import kind_of

    from napari_unet.engine.disk import io

    return kind_of(io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif")))


def apply_variant(pairs) -> None:
    """Set TrainConfig fields (FIELD=VALUE, Python literals) on every config a continuing round trains with."""
    import ast
    from dataclasses import replace

    from napari_unet.engine.training.config import TrainConfig

    if not pairs:
        return
    overrides = {k: ast.literal_eval(v) for k, v in (p.split("=", 1) for p in pairs)}
    original = TrainConfig.for_model
    TrainConfig.for_model = lambda self, summary: original(replace(self, **overrides), summary)
    print(f"variant: {overrides}", file=sys.stderr)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "usiigaci"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--start", default="cells",
                    help="a bundled model's name, a model file, scratch (round 0: a new network on scribbles) or auto "
                         "(round 0: on scribbles, from the bundled model that agrees with them, else a new network)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--budget", type=float, default=15.0, help="seconds per round")
    ap.add_argument("--steps", type=int, help="steps per round instead of seconds")
    ap.add_argument("--ceiling", type=float, default=60.0, help="seconds on the whole true mask (0: none)")
    ap.add_argument("--ceiling-steps", type=int)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--guard", action="store_true", help="train with --keep-better")
    ap.add_argument("--accept-as", default="classes", choices=["objects", "classes"],
                    help="what accepting the rest makes of the predicted objects: painted objects (the widget's "
                         "Accept before #44) or class annotations alone (what the widget does now)")
    ap.add_argument("--band", type=float, default=None,
                    help="accepting leaves this fraction of the objects' diameter along their outlines unannotated "
                         "(default: the widget's, painted.OUTLINE_BAND)")
    ap.add_argument("--unsure", type=float, default=None,
                    help="accepting leaves out the predicted objects whose doubt is above this (default: the "
                         "widget's, uncertainty.UNSURE_OBJECT; 1: accept every object)")
    ap.add_argument("--speck", type=float, default=None,
                    help="of the doubted objects, accepting leaves out those under this fraction of the median "
                         "object's area (default: the widget's, uncertainty.SPECK; 0: every doubted object)")
    ap.add_argument("--pick", default="worst", choices=["worst", "doubt", "random"],
                    help="which objects the user corrects: the 5 worst matched, under the 5 most doubtful, or random")
    ap.add_argument("--forest", action="store_true", help="also the forest on each round's annotations")
    ap.add_argument("--variant", nargs="*", default=[], metavar="FIELD=VALUE",
                    help="TrainConfig fields for every round of a model that continues (e.g. continue_crf_weight=0), "
                         "to compare recipes")
    ap.add_argument("--kind", choices=["fluorescence", "stained", "brightfield"],
                    help="only the fields of this kind (``bundled.kind_of``: DSB2018's H&E-like tiles are the nearest "
                         "to the issue's unseen kinds that this data holds)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--seed", type=int, default=0,
                    help="another draw of every seed (0: the figures of the reports); a field's F1 moves by up to 0.25 "
                         "with the seed alone on H&E-like tiles, so compare recipes over several")
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--out", help="JSON lines of every row")
    ap.add_argument("--png", help="the curves")
    args = ap.parse_args(argv)
    apply_variant(args.variant)
    fields = sorted(p for p in Path(args.data, args.split).glob("*.tif") if not p.stem.endswith("_masks"))
    if args.kind:
        fields = [p for p in fields if field_kind(p) == args.kind]
    fields = fields[args.skip:][: args.limit] if args.limit else fields[args.skip:]
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, path in enumerate(fields):
            index = args.skip + i + 1000 * args.seed  # the field's seeds (scribbles, training, the user's picks)
            for arm in args.arms:
                rows.append(run_field(path, index, Path(tmp), arm, args))
                print(f"{path.stem} {arm}: F1 " + " ".join(f"{v:.3f}" for v in rows[-1]["f1"]) +
                      f"  ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
            if args.ceiling or args.ceiling_steps:
                rows.append(ceiling(path, index, Path(tmp), args))
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    summarize(rows, args.rounds)
    if args.png:
        plot(rows, args.rounds, Path(args.png))


if __name__ == "__main__":
    main()
