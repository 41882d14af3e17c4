"""Do the suggested regions point at the model's mistakes? (issue #22)

Per field: scribbles as in ``scribbles.py`` (seeded), train ``--steps`` (300 steps ~ 30 s on a
2-core CPU), predict with the margin uncertainty, take the 5 suggested regions; then three
simulated users each paint one dab (a disk of radius ``--dab`` px, default 5: napari's default brush
of 10 px, the true class) at the core (the point farthest from its edge) of the largest foreground
error inside each of their boxes, and the model retrains ``--retrain-steps`` (150 ~ 15 s) from where
it was:
  * suggested: the 5 suggested boxes;
  * random:    5 boxes of the same sizes at random places (seeded), a new draw for each retraining
               (``--repeats``): the baseline is the gain of random boxes on average, and one draw per
               field decided too much on 4 Usiigaci fields (benchmarks/reports/12-regions-to-check.md, "A lower floor for a
               box, and random boxes drawn anew");
  * oracle:    one dab in each of the 5 largest true error regions of the image;
  * none:      no dab, the same retraining (a control: what the extra steps alone change; left out
               with ``--no-control``).
Each arm retrains ``--repeats`` times with different seeds, averaged: one retraining's noise is as
large as a few dabs' effect on a 1-Mpx field. It prints the gain in foreground Dice and instance F1
(IoU 0.5) of each over the first model, and the share of the oracle's gain the suggestions reach.
The boxes are the product's (about one object: 32 px on objects under 48 px across, else 64 px;
ranked by the mean margin, spread over the image), or ``--side N``;
``--compare-spread`` adds an arm with the plain ranking's boxes (only kept from overlapping), ``--compare-side N``
adds an arm with the suggested boxes of side N (benchmarks/reports/12-regions-to-check.md: boxes that grew with the
objects did not help), ``--compare-outlines`` one with the boxes ranked by the margin away from the
outlines (``uncertainty.region_uncertainty``; tried in the product and backed out), ``--compare-flips`` two with
the boxes ranked by estimates from flipped predictions (``flip_maps``; benchmarks/reports/12-regions-to-check.md, "Corrections
drawn more often, estimates from flipped predictions, boxes on odd objects"), ``--compare-checkpoint STEP``
one with the boxes ranked by how much the prediction changed since an earlier step of the same run
(``checkpoint_disagreement``; benchmarks/reports/12-regions-to-check.md, "An earlier checkpoint, and 50 BBBC039 fields"),
``--compare-cover`` one with the boxes on the commonest kinds of doubt (``commonest_doubt_boxes``;
benchmarks/reports/12-regions-to-check.md, "Boxes on the commonest kinds of doubt"), ``--compare-unexplored`` two with the
boxes on predicted foreground far from the annotations (``unexplored_foreground``), alone and in
turn with the margin's (benchmarks/reports/12-regions-to-check.md, "Predicted foreground far from the annotations").
Instead of the protocol, ``--estimates`` compares the uncertainty estimates (margin, entropy,
flip disagreement, and the margin away from outlines) by how well
each ranks erroneous pixels (ROC AUC), how much of the error their top-5 boxes hold, and how much of
the 5 largest error regions (the oracle's) their dabs reach.

    python benchmarks/suggestions.py --data ../shared/data/bbbc039 --split val
    python benchmarks/suggestions.py --data ../shared/data/usiigaci --split val
    python benchmarks/suggestions.py --data ../shared/data/usiigaci --split train --estimates

Each field's row is printed as a line of JSON; a run split over processes (``--skip``, ``--limit``)
is summarized with ``--summarize LOG LOG``. ``--seed-offset N`` moves every seed of a field (its
scribbles, first model, boxes and retrainings): the same images with other first models, which more
``--repeats`` on the same models do not give (benchmarks/reports/12-regions-to-check.md, "Other first models").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

DAB = 5  # px radius; --dab


def error_core_dab(pred_fg, true_fg, box=None, radius=DAB):
    """(mask of a dab, class) at the core of the largest foreground error inside ``box`` (y0, x0, y1, x1)
    or the whole image; None when there is no error there."""
    from scipy import ndimage as ndi

    error = pred_fg != true_fg
    if box is not None:
        inside = np.zeros_like(error)
        inside[box[0]:box[2], box[1]:box[3]] = True
        error &= inside
    parts, n = ndi.label(error)
    if n == 0:
        return None
    return _dab_in_part(parts == (np.bincount(parts.ravel())[1:].argmax() + 1), true_fg, radius)


def dabs_in_regions(pred_fg, true_fg, regions, radius=DAB):
    """``error_core_dab`` in each region to check (``uncertainty.Region``), None where a box holds no error."""
    return [error_core_dab(pred_fg, true_fg, (r.y0, r.x0, r.y1, r.x1), radius) for r in regions]


def oracle_dabs(pred_fg, true_fg, n=5, radius=DAB):
    from scipy import ndimage as ndi

    parts, _ = ndi.label(pred_fg != true_fg)
    order = np.argsort(np.bincount(parts.ravel())[1:])[::-1][:n] + 1
    return [_dab_in_part(parts == k, true_fg, radius) for k in order]


def _dab_in_part(part, true_fg, radius):
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(part)
    cy, cx = np.unravel_index(int(dist.argmax()), dist.shape)
    yy, xx = np.ogrid[:part.shape[0], :part.shape[1]]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2) & part, 2 if true_fg[cy, cx] else 1


def random_boxes(regions, shape, rng):
    return [(y0, x0, y0 + r.y1 - r.y0, x0 + r.x1 - r.x0) for r in regions
            for y0, x0 in [(int(rng.integers(0, shape[0] - (r.y1 - r.y0) + 1)),
                            int(rng.integers(0, shape[1] - (r.x1 - r.x0) + 1)))]]


def painted(scribbles, dabs):
    out = scribbles.copy()
    for found in dabs:
        if found is not None:
            mask, cls = found
            out[mask] = cls
    return out


def clone(model):
    from napari_unet.engine.model import modelfile

    return modelfile.model_from_dict(modelfile.model_to_dict(model))


def flip_maps(model, image, probabilities):
    """Two estimates from the prediction and those of the image flipped in Y and in X (flipped back):
    "flip disagreement", twice the standard deviation of the foreground probability over the three,
    and "margin of the flip mean", the margin of their mean class probabilities; (Y, X) float32 in
    [0, 1]. Three predictions, where the margin takes none on top of the one made anyway."""
    from napari_unet.engine.prediction import predict, uncertainty

    probs = [np.asarray(probabilities, np.float32)]
    for axis in (0, 1):
        flipped = predict.predict_probabilities(model, np.flip(image, axis).copy())
        probs.append(np.flip(flipped, axis + 1))  # (K, Y, X): flip Y or X back, not the classes
    foreground = np.stack([p[1:].sum(0) for p in probs])
    return {"flip disagreement": np.clip(foreground.std(0) * 2, 0, 1).astype(np.float32),
            "margin of the flip mean": uncertainty.uncertainty_map(np.mean(probs, 0))}


def train_with_snapshot(image, scribbles, config, at=None):
    """The model trained on one image's scribbles, and the class probabilities (K, Y, X) of the same
    run's net at step ``at`` (None: no snapshot), its batch norm recalibrated on a copy from crops
    of its own, so the run itself goes on exactly as without (what a live preview some steps
    before the last one showed)."""
    import torch

    from napari_unet.engine import convention, convert
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.training import events, sampling, train

    model, earlier = None, None
    for event in train.fit([image], [scribbles], config):
        if isinstance(event, events.Started):
            model = event.model
        elif isinstance(event, events.Step) and event.step == at:
            snapshot = clone(model)  # weights and batch-norm statistics; draws nothing from the run's generators
            cfg = snapshot.config
            prepared = convert.prepare(image[None], cfg)
            sampler = sampling.PatchSampler([prepared], [convention.check_annotations(scribbles, prepared.shape[1:])],
                                        train.patch_shape(config, cfg), np.random.default_rng(999))
            train.recalibrate_batchnorm(snapshot.net, sampler, torch.device("cpu"))
            snapshot.net.eval()
            earlier = pipeline.predict_image(snapshot, image, "YX", probabilities=True).probabilities
    return model, earlier


def checkpoint_disagreement(probabilities, earlier):
    """Twice the change of the foreground probability between an earlier checkpoint's prediction and
    this one ((K, Y, X) each): (Y, X) float32 in [0, 1], where the model is still moving."""
    change = np.abs(np.asarray(probabilities)[1:].sum(0) - np.asarray(earlier)[1:].sum(0))
    return np.clip(2 * change, 0, 1).astype(np.float32)


def head_features(model, image):
    """(C, Y, X) float32: the features the network's 1x1 head reads, each pixel's vector of unit
    length, from one pass over the whole normalised image (what the model thinks a pixel is)."""
    import torch

    from napari_unet.engine import convert

    cfg = model.config
    x = convert.prepare(image[None], cfg)  # as in prediction
    seen = {}
    hook = model.net.head.register_forward_hook(lambda module, inputs, output: seen.update(f=inputs[0]))
    was_training = model.net.training
    model.net.eval()
    try:
        with torch.inference_mode():
            model.net(torch.from_numpy(x[None]))
    finally:
        hook.remove()
        model.net.train(was_training)
    f = seen["f"][0, :, :x.shape[1], :x.shape[2]].float().numpy()  # the net pads at the end; crop back
    return f / (np.linalg.norm(f, axis=0, keepdims=True) + 1e-6)


def commonest_doubt_boxes(features, u, seed, n=5, side=64, k=6, doubt=0.3):
    """Boxes on the commonest kinds of doubt ("information density"): the pixels of margin above
    ``doubt`` clustered by their ``head_features`` (spherical k-means, weighted by the margin); each
    box goes to the cluster of largest remaining margin mass (halved when it gets one), at the free
    place holding most of that cluster's margin. u: (Y, X) margin; returns ``uncertainty.Region``s."""
    from scipy import ndimage as ndi

    from napari_unet.engine.prediction import uncertainty

    h, w = u.shape
    ys, xs = np.nonzero(u > doubt)
    if len(ys) < 50:
        return uncertainty.suggest_regions(u, n, side)
    vectors, weights = features[:, ys, xs].T, u[ys, xs].astype(np.float64)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(ys), min(len(ys), 20000), replace=False)
    centres = vectors[sample][rng.choice(len(sample), k, replace=False, p=weights[sample] / weights[sample].sum())]
    for _ in range(30):
        nearest = np.argmax(vectors[sample] @ centres.T, 1)
        for j in range(k):
            if (nearest == j).any():
                v = (vectors[sample][nearest == j] * weights[sample][nearest == j, None]).sum(0)
                centres[j] = v / (np.linalg.norm(v) + 1e-6)
    cluster = np.argmax(vectors @ centres.T, 1)
    mass = np.array([weights[cluster == j].sum() for j in range(k)])
    held = []
    for j in range(k):
        part = np.zeros_like(u)
        part[ys[cluster == j], xs[cluster == j]] = u[ys[cluster == j], xs[cluster == j]]
        held.append(ndi.uniform_filter(part, size=side, mode="constant"))
    free, regions = np.ones(u.shape, bool), []
    while len(regions) < n and (mass > 0).any():
        j = int(np.argmax(mass))
        candidates = np.where(free, held[j], -1.0)
        cy, cx = np.unravel_index(int(np.argmax(candidates)), candidates.shape)
        if candidates[cy, cx] <= 0:  # no free place left on this kind of doubt
            mass[j] = -1
            continue
        y0, x0 = int(np.clip(cy - side // 2, 0, h - side)), int(np.clip(cx - side // 2, 0, w - side))
        regions.append(uncertainty.Region(len(regions) + 1, y0, x0, y0 + side, x0 + side, float(mass[j])))
        free[max(0, y0 - side // 2):y0 + side + side // 2, max(0, x0 - side // 2):x0 + side + side // 2] = False
        mass[j] /= 2
    return regions


def unexplored_foreground(probabilities, scribbles, side):
    """Where the model calls a pixel foreground far from everything the user painted: the foreground
    probability times the distance (px) to the nearest annotated pixel over 3 box sides, capped at 1;
    (Y, X) float32 in [0, 1]. Aimed at the sure false foreground that the margin misses (91 % of a
    300-step Usiigaci model's wrong pixels): its boxes' dabs land in errors about three times as
    large as the margin's, yet teach no more (benchmarks/reports/12-regions-to-check.md, "Predicted foreground far from
    the annotations")."""
    from scipy import ndimage as ndi

    far = ndi.distance_transform_edt(np.asarray(scribbles) == 0) / (3 * side)
    return (np.asarray(probabilities)[1:].sum(0) * np.clip(far, 0, 1)).astype(np.float32)


def interleaved(first, second, n=5):
    """Up to ``n`` boxes taken in turn from two ranked lists of ``uncertainty.Region``, the first
    list's first, each skipped where it overlaps one already taken; re-ranked 1..n."""
    from dataclasses import replace

    def overlaps(a, b):
        return a.y0 < b.y1 and b.y0 < a.y1 and a.x0 < b.x1 and b.x0 < a.x1

    lists, taken = [list(first), list(second)], []
    while len(taken) < n and any(lists):
        for queue in lists:
            while queue and any(overlaps(queue[0], t) for t in taken):
                queue.pop(0)
            if queue and len(taken) < n:
                taken.append(replace(queue.pop(0), rank=len(taken) + 1))
    return taken


def estimates(model, image, pred_fg, true_fg, probabilities):
    """Per estimate: ROC AUC against the erroneous pixels, the error share in its top-5 boxes, and
    its reach: the area of the error regions its 5 boxes' dabs land in (the largest inside each box),
    as a share of the 5 largest error regions' (the oracle's)."""
    from scipy import ndimage as ndi
    from sklearn.metrics import roc_auc_score

    from napari_unet.engine.prediction import uncertainty

    maps = {"margin": uncertainty.uncertainty_map(probabilities), "entropy": uncertainty.entropy_map(probabilities),
            "flip disagreement": flip_maps(model, image, probabilities)["flip disagreement"],
            "margin away from outlines": uncertainty.region_uncertainty(probabilities)}
    error = pred_fg != true_fg
    parts, _ = ndi.label(error)
    sizes = np.bincount(parts.ravel())
    sizes[0] = 0
    oracle = max(int(np.sort(sizes)[::-1][:5].sum()), 1)
    out = {}
    for name, u in maps.items():
        boxes = uncertainty.suggest_regions(u, min_score=0.0)
        held = sum(int(error[r.y0:r.y1, r.x0:r.x1].sum()) for r in boxes)
        reached = set()
        for r in boxes:
            inside = np.bincount(parts[r.y0:r.y1, r.x0:r.x1].ravel(), minlength=2)
            inside[0] = 0
            if inside.any():
                reached.add(int(inside.argmax()))
        out[name] = (roc_auc_score(error.ravel(), u.ravel()) if error.any() else float("nan"),
                     held / max(int(error.sum()), 1), sum(int(sizes[k]) for k in reached) / oracle)
    return out


def run_field(i, path, args):
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction import pipeline, uncertainty
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training import train
    from napari_unet.engine.training.scribbles import simulate_scribbles

    image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))
    true_fg = truth > 0
    if not true_fg.any():  # nothing to paint an object on (one BBBC039 field is empty): no protocol
        return None
    seed = i + args.seed_offset  # offset 0: the seeds of all the runs in benchmarks/reports/12-regions-to-check.md
    scribbles = simulate_scribbles(truth, seed=seed)
    config = train.TrainConfig(steps=args.steps, time_budget=None, seed=seed)
    model, earlier = train_with_snapshot(image, scribbles, config, args.compare_checkpoint)
    found = pipeline.predict_image(model, image, "YX", instances=True, probabilities=True)
    pred_fg = found.labels > 0
    row = {"field": path.stem, "dice": dice(found.labels, truth), "f1": instance_f1(found.labels, truth)}
    if args.estimates:
        row["estimates"] = estimates(model, image, pred_fg, true_fg, found.probabilities)
        return row
    side = args.side or uncertainty.region_side(found.labels)  # the product's: about one object
    regions = uncertainty.suggest_regions(uncertainty.uncertainty_map(found.probabilities), side=side)
    rng = np.random.default_rng(1000 + seed)  # the first draw is the one earlier runs used
    arms = {
        "suggested": dabs_in_regions(pred_fg, true_fg, regions, args.dab),
        "random": [[error_core_dab(pred_fg, true_fg, b, args.dab) for b in random_boxes(regions, true_fg.shape, rng)]
                   for _ in range(args.repeats)],  # one draw per retraining
        "oracle": oracle_dabs(pred_fg, true_fg, radius=args.dab),
        "none": [],
    }
    if args.no_control:
        del arms["none"]
    if args.compare_side:  # the same protocol with the suggested boxes at another fixed side
        fixed = uncertainty.suggest_regions(uncertainty.uncertainty_map(found.probabilities), side=args.compare_side)
        arms[f"suggested {args.compare_side} px"] = dabs_in_regions(pred_fg, true_fg, fixed, args.dab)
    if args.compare_spread:  # the same protocol with the plain ranking: boxes only kept from overlapping
        plain = uncertainty.suggest_regions(uncertainty.uncertainty_map(found.probabilities), side=side, spread=0)
        arms["suggested, not spread"] = dabs_in_regions(pred_fg, true_fg, plain, args.dab)
    if args.compare_outlines:  # the same protocol with the boxes ranked by the margin away from outlines
        away = uncertainty.suggest_regions(uncertainty.region_uncertainty(found.probabilities), side=side,
                                           min_score=0.002)  # ~8 undecided px: 0.02 left some fields no box
        arms["suggested away from outlines"] = dabs_in_regions(pred_fg, true_fg, away, args.dab)
    if args.compare_flips:  # the same protocol with the boxes ranked by the flip estimates
        for name, u in flip_maps(model, image, found.probabilities).items():
            arms[f"suggested by {name}"] = dabs_in_regions(pred_fg, true_fg,
                                                           uncertainty.suggest_regions(u, side=side), args.dab)
    if args.compare_checkpoint:  # the same protocol with the boxes ranked by the change since an earlier step
        u = checkpoint_disagreement(found.probabilities, earlier)
        arms[f"suggested by the change since step {args.compare_checkpoint}"] = dabs_in_regions(
            pred_fg, true_fg, uncertainty.suggest_regions(u, side=side), args.dab)
    if args.compare_cover:  # the same protocol with the boxes on the commonest kinds of doubt
        cover = commonest_doubt_boxes(head_features(model, image), uncertainty.uncertainty_map(found.probabilities),
                                      seed=seed, side=side)
        arms["suggested on the commonest doubt"] = dabs_in_regions(pred_fg, true_fg, cover, args.dab)
    if args.compare_unexplored:  # the same protocol with the boxes on foreground far from the annotations
        u = unexplored_foreground(found.probabilities, scribbles, side)
        unexplored = uncertainty.suggest_regions(u, side=side)
        arms["suggested on unexplored foreground"] = dabs_in_regions(pred_fg, true_fg, unexplored, args.dab)
        arms["margin and unexplored in turn"] = dabs_in_regions(pred_fg, true_fg, interleaved(regions, unexplored),
                                                                args.dab)
    row["side"] = regions[0].y1 - regions[0].y0 if regions else 0
    for arm, dabs in arms.items():
        draws = dabs if arm == "random" else [dabs] * args.repeats  # the dabs of each retraining
        gains = []
        for repeat, drawn in enumerate(draws):
            config = train.TrainConfig(steps=args.retrain_steps, time_budget=None, seed=seed + 100 * repeat)
            tuned = train.train([image], [painted(scribbles, drawn)], config, model=clone(model))
            labels = pipeline.predict_image(tuned, image, "YX", instances=True).labels
            gains.append((dice(labels, truth) - row["dice"], instance_f1(labels, truth) - row["f1"]))
        row[arm] = (*np.mean(gains, axis=0), np.mean([sum(d is not None for d in drawn) for drawn in draws]))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/bbbc039"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--retrain-steps", type=int, default=150)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--skip", type=int, default=0,
                    help="leave out the first N fields (their seeds stay those of their place: a run split in two "
                         "processes gives the same rows)")
    ap.add_argument("--dab", type=int, default=DAB, help="radius of a dab in pixels")
    ap.add_argument("--repeats", type=int, default=2, help="retrainings (seeds) averaged per arm")
    ap.add_argument("--seed-offset", type=int, default=0,
                    help="add this to every seed of a field (its scribbles, first model, random boxes and "
                         "retrainings): other first models and other suggested boxes on the same images")
    ap.add_argument("--estimates", action="store_true", help="compare the uncertainty estimates instead")
    ap.add_argument("--side", type=int,
                    help="boxes of this side in px (default: the product's, about one object: "
                         "uncertainty.region_side)")
    ap.add_argument("--compare-side", type=int, help="one more arm: the suggested boxes at this fixed side")
    ap.add_argument("--compare-spread", action="store_true",
                    help="one more arm: the boxes of the plain ranking, only kept from overlapping (spread=0)")
    ap.add_argument("--compare-outlines", action="store_true",
                    help="one more arm: the boxes ranked by the margin away from outlines (region_uncertainty)")
    ap.add_argument("--compare-flips", action="store_true",
                    help="two more arms: the boxes ranked by the flip disagreement and by the margin of the flip mean")
    ap.add_argument("--compare-checkpoint", type=int, metavar="STEP",
                    help="one more arm: the boxes ranked by the change of the prediction since this step of "
                         "the same run (checkpoint_disagreement)")
    ap.add_argument("--compare-cover", action="store_true",
                    help="one more arm: the boxes on the commonest kinds of doubt (commonest_doubt_boxes)")
    ap.add_argument("--compare-unexplored", action="store_true",
                    help="two more arms: the boxes on predicted foreground far from the annotations "
                         "(unexplored_foreground), and those boxes and the margin's in turn (interleaved)")
    ap.add_argument("--no-control", action="store_true",
                    help="leave out the retraining with no dab (a quarter of the run), e.g. on many fields")
    ap.add_argument("--summarize", nargs="+", metavar="LOG",
                    help="no run: the table of the field rows (JSON lines) that earlier runs printed to these logs")
    args = ap.parse_args(argv)
    if args.summarize:
        rows = [json.loads(line) for log in args.summarize for line in Path(log).read_text().splitlines()
                if line.startswith("{")]
        print(f"{len(rows)} fields from {', '.join(args.summarize)}")
        summarize(rows)
        return
    fields = sorted(p for p in Path(args.data, args.split).glob("*.tif") if not p.stem.endswith("_masks"))
    fields = fields[args.skip:]
    rows = []
    for i, path in enumerate(fields[: args.limit] if args.limit else fields, start=args.skip):
        row = run_field(i, path, args)
        if row is None:
            print(f"{path.stem}: no objects in its mask, left out", flush=True)
            continue
        rows.append(row)
        print(json.dumps(row, default=float), flush=True)
    print(f"\n{args.data} {args.split}: {len(rows)} fields, {args.steps} steps, retrain {args.retrain_steps} "
          f"x {args.repeats} seeds, dabs of radius {args.dab}")
    summarize(rows)


def summarize(rows):
    """Print the table of the fields' rows: each arm's mean gains, the shares of the oracle's, and the
    paired differences (or, for ``--estimates`` rows, the estimates' table)."""
    if "estimates" in rows[0]:
        print("| estimate | ROC AUC of erroneous pixels | error share in top-5 boxes | reach of the 5 largest "
              "errors |\n|---|---|---|---|")
        for name in rows[0]["estimates"]:
            auc, share, reach = (np.nanmean([r["estimates"][name][k] for r in rows]) for k in range(3))
            print(f"| {name} | {auc:.3f} | {share:.3f} | {reach:.3f} |")
        return
    print(f"before: Dice {np.mean([r['dice'] for r in rows]):.3f}, F1 {np.mean([r['f1'] for r in rows]):.3f}; "
          f"box sides {[r['side'] for r in rows]}")
    print("| boxes | Dice gain | F1 gain | dabs |\n|---|---|---|---|")
    gains = {}
    for arm in [key for key in rows[0] if key not in ("field", "dice", "f1", "side")]:  # in the order they ran
        gains[arm] = [np.mean([r[arm][k] for r in rows]) for k in range(3)]
        print(f"| {arm} | {gains[arm][0]:+.4f} | {gains[arm][1]:+.4f} | {gains[arm][2]:.1f} |")
    for k, name in enumerate(("Dice", "F1")):
        share = gains["suggested"][k] / gains["oracle"][k] if gains["oracle"][k] > 0 else float("nan")
        print(f"suggested / oracle {name} gain: {share:.0%}")
        if "none" in gains:
            net = [gains[arm][k] - gains["none"][k] for arm in ("suggested", "random", "oracle")]
            print(f"  net of the control (no dab): suggested {net[0]:+.4f}, random {net[1]:+.4f}, oracle {net[2]:+.4f}"
                  + (f", suggested / oracle {net[0] / net[2]:.0%}" if net[2] > 0 else ""))
        for other in ("random", "oracle"):  # paired by field: how sure the difference is
            diff = np.array([r["suggested"][k] - r[other][k] for r in rows])
            se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            print(f"  suggested - {other}: {diff.mean():+.4f} (standard error over fields {se:.4f}), "
                  f"ahead on {(diff > 0).sum()} of {len(diff)} fields")


if __name__ == "__main__":
    main()
