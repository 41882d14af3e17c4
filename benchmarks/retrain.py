"""Does retraining from a model keep what it learned? The peak learning rate of a continued run,
and the weight of the term that keeps the model's own prediction where nothing is painted.

Per field: scribbles as in ``scribbles.py`` (seeded), train ``--steps`` (300 ~ 30 s on a 2-core
CPU), then retrain ``--retrain-steps`` (150 ~ 15 s) from that model at each peak learning rate of
``--rates`` and each ``TrainConfig.continue_prior_weight`` of ``--prior-weights`` (default: the
product's), twice each (seeds i and i + 100), with
  * none:   the same strokes (a user pressing Train again: it should not get worse);
  * oracle: one dab (radius 5 px, the true class) at the core of each of the 5 largest true error
            regions (``suggestions.py``'s oracle: what a correction adds);
  * suggested (``--arms``): one dab at the core of the largest error inside each of the 5 regions
            to check (``suggestions.py``'s suggested arm: what a user following them paints).
It prints, per rate and arm, the mean change in foreground Dice and instance F1 (IoU 0.5), the
spread (standard deviation) over fields and seeds, the worst change, how many retrainings lost more
than 0.05 Dice (a collapse), and the share of the arm's dab pixels predicted as painted afterwards
(does the correction take? for "none": the oracle's dab pixels). Steps, not seconds, so any CPU
gives the same figures. napari-unet continues at ``TrainConfig.continue_learning_rate`` (5e-3: at
1e-3 the model ignored the dabs, at 1e-2 it sometimes collapsed) and keeps its own prediction at
``continue_prior_weight`` (0.3: calmer than 0, while the dabs still take).

    python benchmarks/retrain.py --data ../shared/data/usiigaci --split train --limit 4
    python benchmarks/retrain.py --data ../shared/data/bbbc039 --split train --limit 4 --rates 1e-2,2e-3
    python benchmarks/retrain.py --data ../shared/data/usiigaci --split train --limit 4 --rates 1e-2 --prior-weights 0,0.3,1
    python benchmarks/retrain.py --data ../shared/data/usiigaci --split train --skip 4 --rates 1e-2 --prior-weights 0,0.3
    python benchmarks/retrain.py --data ../shared/data/usiigaci --split train --rates 1e-2,5e-3 --arms suggested --repeats 3
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from suggestions import clone, dabs_in_regions, oracle_dabs, painted

from napari_unet.engine.training.config import TrainConfig


def run_field(i, path, args, changes):
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training import train
    from napari_unet.engine.training.scribbles import simulate_scribbles

    image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))
    scribbles = simulate_scribbles(truth, seed=i)
    model = train.train([image], [scribbles], train.TrainConfig(steps=args.steps, time_budget=None, seed=i))
    found = pipeline.predict_image(model, image, "YX", instances=True, probabilities=True)
    labels = found.labels
    before = dice(labels, truth), instance_f1(labels, truth)
    oracle = [d for d in oracle_dabs(labels > 0, truth > 0) if d is not None]
    all_dabs = {"none": [], "oracle": oracle, "suggested": suggested_dabs(found, truth)}
    for rate, weight in [(r, w) for r in args.rates for w in args.prior_weights]:
        for arm in args.arms:
            dabs = all_dabs[arm]
            strokes = painted(scribbles, dabs)
            # 1 background, 2 object where a dab is ("none": where the oracle's would be)
            dabbed = painted(np.zeros_like(scribbles), oracle if arm == "none" else dabs)
            for repeat in range(args.repeats):
                config = train.TrainConfig(steps=args.retrain_steps, time_budget=None, seed=i + 100 * repeat,
                                           continue_learning_rate=rate, continue_prior_weight=weight)
                tuned = train.train([image], [strokes], config, model=clone(model))
                after = pipeline.predict_image(tuned, image, "YX", instances=True).labels
                right = ((after > 0) == (dabbed == 2))[dabbed > 0]  # the dabs' pixels now right
                change = (dice(after, truth) - before[0], instance_f1(after, truth) - before[1],
                          right.mean() if right.size else np.nan)
                changes.setdefault((rate, weight, arm), []).append(change)
                print(f"{path.stem} rate {rate:g} prior {weight:g} {arm} seed {repeat}: Dice {change[0]:+.4f} F1 {change[1]:+.4f} "
                      f"dab pixels right {change[2]:.2f}", flush=True)
    print(f"{path.stem}: before Dice {before[0]:.3f} F1 {before[1]:.3f}", flush=True)


def suggested_dabs(found, truth):
    """One dab at the core of the largest error inside each region to check (``suggestions.py``);
    found: the model's prediction with its probabilities."""
    from napari_unet.engine.prediction import uncertainty

    # 64-px boxes, those of its measurements (the product now sizes them by the objects: region_side)
    regions = uncertainty.suggest_regions(uncertainty.uncertainty_map(found.probabilities),
                                          side=uncertainty.DEFAULT_REGION_SIDE)
    return [d for d in dabs_in_regions(found.labels > 0, truth > 0, regions) if d is not None]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/usiigaci"))
    ap.add_argument("--split", default="train")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--skip", type=int, default=0, help="leave out the first N fields (a second sample)")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--retrain-steps", type=int, default=150)
    ap.add_argument("--rates", default="1e-2,3e-3,1e-3", help="peak learning rates of the continued run")
    ap.add_argument("--prior-weights", default=str(TrainConfig.continue_prior_weight),
                    help="weights of the term keeping the model's prediction where nothing new is painted")
    ap.add_argument("--arms", default="none,oracle", help="among none, oracle, suggested")
    ap.add_argument("--repeats", type=int, default=2, help="retrainings (seeds i + 100 r) per arm")
    args = ap.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",")]
    args.prior_weights = [float(w) for w in args.prior_weights.split(",")]
    args.arms = args.arms.split(",")
    fields = sorted(p for p in Path(args.data, args.split).glob("*.tif") if not p.stem.endswith("_masks"))
    changes = {}
    fields = fields[args.skip:]
    for i, path in enumerate(fields[: args.limit] if args.limit else fields, start=args.skip):
        run_field(i, path, args, changes)
    print(f"\n{args.data} {args.split}: {args.steps} steps, then {args.retrain_steps} from the model\n"
          "| peak rate | prior weight | arm | Dice change (spread, worst) | F1 change (spread) "
          "| runs below -0.05 Dice | dab pixels right after |\n|---|---|---|---|---|---|---|")
    for (rate, weight, arm), c in sorted(changes.items(), key=lambda kv: (-kv[0][0], *kv[0][1:])):
        c = np.array(c)
        print(f"| {rate:g} | {weight:g} | {arm} | {c[:, 0].mean():+.4f} ({c[:, 0].std():.4f}, {c[:, 0].min():+.4f}) "
              f"| {c[:, 1].mean():+.4f} ({c[:, 1].std():.4f}) | {(c[:, 0] < -0.05).sum()} of {len(c)} "
              f"| {np.nanmean(c[:, 2]):.2f} |")


if __name__ == "__main__":
    main()
