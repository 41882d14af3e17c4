"""One wrong correction must not outweigh everything else the user painted (issue #20).

On the bundled nuclei sample: train on its scribbles (300 steps), predict instances, then make the
mistake a user made: erase a real nucleus (the largest predicted one, ~1500 px) in the prediction
and press Use corrections, which turns it into background annotations; retrain 150 steps from the
model and count the objects and their F1 against the true mask. Patch centres drawn per stroke
(each connected part of the annotations equally likely: napari-unet's default) against per pixel
(the old sampling, where that one blob drew most background patches). Seeded; steps, not seconds,
so any CPU gives the same figures.

    python benchmarks/corrections.py
    python benchmarks/corrections.py --prior-weights 0,1,3   # the retraining's continue_prior_weight
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np


def run(by_stroke: bool, seed: int = 0, prior_weight: float | None = None) -> dict:
    """prior_weight: TrainConfig.continue_prior_weight of the retraining (None: the default)."""
    from napari_unet.engine import convention
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training import train
    from napari_unet.sample_data import sample_paths

    paths = sample_paths()
    image, scribbles, truth = (io.read_image(paths[k]) for k in ("image", "scribbles", "mask"))
    config = train.TrainConfig(steps=300, time_budget=None, seed=seed, sample_by_stroke=by_stroke)
    model = train.train([image], [scribbles], config)
    before = pipeline.predict_image(model, image, "YX", instances=True).labels
    sizes = np.bincount(before.ravel())
    sizes[0] = 0
    erased = before == sizes.argmax()  # the user erases a real nucleus by mistake
    corrected = np.where(erased, convention.BACKGROUND, scribbles).astype(np.uint8)
    config = train.TrainConfig(steps=150, time_budget=None, seed=seed, sample_by_stroke=by_stroke)
    if prior_weight is not None:
        config = replace(config, continue_prior_weight=prior_weight)
    model = train.train([image], [corrected], config, model=model)
    after = pipeline.predict_image(model, image, "YX", instances=True).labels
    return {"sampling": "per stroke" if by_stroke else "per pixel", "prior weight": config.continue_prior_weight,
            "erased px": int(erased.sum()),
            "objects before": int(before.max()), "objects after": int(after.max()), "true objects": int(truth.max()),
            "F1 before": instance_f1(before, truth), "F1 after": instance_f1(after, truth),
            "Dice after": dice(after, truth)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prior-weights", help="continue_prior_weight values of the retraining to compare, "
                    "per-stroke sampling only (e.g. 0,1,3)")
    args = ap.parse_args(argv)
    if args.prior_weights:
        rows = [run(True, prior_weight=float(w)) for w in args.prior_weights.split(",")]
    else:
        rows = [run(by_stroke) for by_stroke in (False, True)]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
