"""Quality from scribbles: napari-unet (through its CLI) against an ilastik-style random forest.

For each field of a BBBC039 split: simulate scribbles (< 1 % of pixels: dabs in
~10 nuclei, ~10 short background strokes; seeded), then
  * napari-unet:   `napari-unet train IMG --labels SCRIB --out M --time-budget T`
                   `napari-unet predict M IMG --out MASK --instances`   (separate processes)
  * random forest: skimage multiscale_basic_features + sklearn RandomForestClassifier
                   on the same scribbles, same instance post-processing,
and score foreground Dice and instance F1 at IoU 0.5 against the true masks.

    python benchmarks/scribbles.py --data ../shared/data/bbbc039 --split val --budgets 30
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def random_forest_labels(image, scribbles, seed):
    """ilastik-style baseline: per-pixel features + random forest, then our instance step."""
    from skimage.feature import multiscale_basic_features
    from sklearn.ensemble import RandomForestClassifier

    from napari_unet.instances import instance_labels

    img = image.astype(np.float32)
    img = (img - img.min()) / max(float(np.ptp(img)), 1e-6)
    feats = multiscale_basic_features(img, sigma_min=1, sigma_max=16)
    rf = RandomForestClassifier(n_estimators=100, max_depth=12, n_jobs=-1, random_state=seed)
    rf.fit(feats[scribbles > 0], scribbles[scribbles > 0])
    proba = rf.predict_proba(feats.reshape(-1, feats.shape[-1]))
    probs = proba.T.reshape(proba.shape[1], *image.shape).astype(np.float32)
    return instance_labels(probs).labels


def unet_labels(image_path: Path, scribble_path: Path, budget: float, work: Path):
    """Train and predict with the CLI in fresh processes; returns (labels, seconds)."""
    from napari_unet.engine.disk import io

    model, mask = work / "model.pt", work / "mask.tif"
    cli = [sys.executable, "-m", "napari_unet.cli"]
    start = time.perf_counter()
    subprocess.run(cli + ["train", str(image_path), "--labels", str(scribble_path), "--out", str(model),
                          "--time-budget", str(budget)], check=True, stderr=subprocess.DEVNULL)
    subprocess.run(cli + ["predict", str(model), str(image_path), "--out", str(mask), "--instances"],
                   check=True, stderr=subprocess.DEVNULL)
    return io.read_image(mask), time.perf_counter() - start


def main(argv=None):
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training.scribbles import simulate_scribbles

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/bbbc039"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--budgets", type=float, nargs="+", default=[30.0], help="training budgets in seconds")
    ap.add_argument("--limit", type=int, help="only the first N fields")
    args = ap.parse_args(argv)

    fields = sorted(p for p in Path(args.data, args.split).glob("*.tif") if not p.stem.endswith("_masks"))
    fields = fields[: args.limit] if args.limit else fields
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, path in enumerate(fields):
            image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))
            scribbles = simulate_scribbles(truth, seed=i)
            scribble_path = io.write_mask(work / "scribbles.tif", scribbles)
            rf = random_forest_labels(image, scribbles, seed=i)
            row = {"field": path.stem, "coverage %": 100 * float((scribbles > 0).mean()),
                   "rf dice": dice(rf, truth), "rf f1": instance_f1(rf, truth)}
            for budget in args.budgets:
                labels, secs = unet_labels(path, scribble_path, budget, work)
                row[f"unet{budget:g} dice"] = dice(labels, truth)
                row[f"unet{budget:g} f1"] = instance_f1(labels, truth)
            rows.append(row)
            print("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    print_table(rows)


def print_table(rows):
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")
    means = ["**mean**"] + [f"**{np.mean([r[k] for r in rows]):.3f}**" for k in keys[1:]]
    print("| " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
