"""What choosing the start costs before a first round (``engine.training.start.choose_start``).

Before the first Train with Start from "auto", each bundled model is scored on the user's strokes.
It used to predict the whole image for that (twice: two bundled models); it now predicts the painted
part (their bounding box and 96 px of context) with the whole image's conversion and object size.
Here both, in one run, on the nuclei sample mirrored and tiled to ``--sides``, painted with the
sample's scribbles in one corner (the user who paints where they are looking) or everywhere:

    python benchmarks/start_cost.py --sides 696 2048

Prints, per image and strokes, the seconds of the choice and each candidate's score, the whole-image
way (baseline) and the painted-part way. Both stop at a candidate in full agreement (a score of 1.000:
no later one can win). Nothing trains; the first preview waits for this.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _tiled(array: np.ndarray, side: int) -> np.ndarray:
    reps = (-(-side // array.shape[0]), -(-side // array.shape[1]))
    mirrored = np.block([[array, array[:, ::-1]], [array[::-1], array[::-1, ::-1]]])
    return np.tile(mirrored, reps)[:side, :side]


def whole_image_agreement(model, images, annotations) -> float:
    """The baseline: the score as it was computed before, from the whole image's prediction."""
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.training import start

    right = {}
    for image, ann in zip(images, annotations):
        start.tally_strokes(right, np.asarray(pipeline.predict_image(model, image, "CYX", diameter="auto").labels), ann)
    return start.balanced_accuracy(right)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sides", type=int, nargs="+", default=[696, 2048])
    args = ap.parse_args()

    from napari_unet.engine.disk import io
    from napari_unet.engine.model import bundled, modelfile
    from napari_unet.engine.training import start
    from napari_unet.sample_data import sample_paths

    image, scribbles = (io.read_image(sample_paths()[k]) for k in ("image", "scribbles"))
    names = sorted(bundled.bundled_names(), key=lambda name: name != bundled.DEFAULT_MODEL)  # choose_start's order
    models = {name: modelfile.load_model(name) for name in names}
    print(f"{'image':>11s} {'strokes':>10s} {'way':>12s} {'seconds':>8s}  scores")
    for side in args.sides:
        big = _tiled(image, side)
        everywhere = _tiled(scribbles, side)
        corner = np.zeros_like(everywhere)
        corner[:520, :696] = scribbles  # one sample field's worth, in the top-left corner
        for label, strokes in (("one corner", corner), ("everywhere", everywhere)):
            for way in ("whole image", "painted part"):
                t = time.perf_counter()
                if way == "whole image":
                    scores = {}
                    for n, m in models.items():  # in order, to the first in full agreement (as choose_start)
                        scores[n] = whole_image_agreement(m, [big[None]], [strokes])
                        if round(scores[n], 3) == 1.0:
                            break
                else:
                    scores = start.choose_start([big[None]], [strokes]).scores
                seconds = time.perf_counter() - t
                listed = ", ".join(f"{n} {v:.3f}" for n, v in scores.items())
                print(f"{side:>5d}x{side:<5d} {label:>10s} {way:>12s} {seconds:8.2f}  {listed}", flush=True)


if __name__ == "__main__":
    main()
