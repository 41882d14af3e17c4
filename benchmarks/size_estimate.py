"""How well the diameter estimate (``predict --diameter auto``) finds the objects' true size (issue #45).

For each image of a folder with instance masks (``<name>_masks.tif``): the masks' own diameter
(``size.diameter_of_labels``, the truth), the model's estimate (``size.estimate_diameter``, what Predict
and a round use), and the foreground rule on the true foreground (``size.diameter_of_foreground`` of
mask > 0: the rule alone, without the model's errors). Each printed next to the baseline, the
area-weighted median of the foreground's parts that the rule used before stop 54 (report 14).
Figures: the ratio to the truth (median, quartiles), the share within 1.25x, the mean absolute log
ratio, and how many images got no estimate.

    python benchmarks/size_estimate.py nuclei-stained ../shared/data/dsb2018/train --bright   # report 14
    python benchmarks/size_estimate.py nuclei ../shared/data/bbbc039_all/train --limit 30
"""

from __future__ import annotations

import argparse
import math
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def area_weighted(mask) -> float:
    """The baseline: the area-weighted median width of the foreground's parts (no speck rule)."""
    from napari_unet.engine.prediction import size

    peaks, sizes = size.foreground_parts(mask)
    return float(2 * size.weighted_median(peaks, sizes)) if len(peaks) else float("nan")


@contextmanager
def foreground_rule(rule):
    """``size.diameter_of_foreground`` replaced by ``rule`` (None: as shipped) while inside."""
    from napari_unet.engine.prediction import size

    shipped = size.diameter_of_foreground
    size.diameter_of_foreground = rule or shipped
    try:
        yield rule or shipped
    finally:
        size.diameter_of_foreground = shipped


def images(folder: Path, bright: bool, limit: int | None):
    """(name, image channels first as float32 luminance, instance mask) of ``folder``."""
    from napari_unet.engine import convert
    from napari_unet.engine.disk import io

    n = 0
    for path in sorted(p for p in folder.glob("*.tif") if not p.stem.endswith("_masks")):
        image = io.read_image(path)
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            image = image[..., :3].astype(np.float32) @ np.asarray(convert.LUMINANCE, np.float32)
        chw = image[None].astype(np.float32)
        if bright and not convert.has_bright_background(chw):
            continue
        yield path.stem, chw, io.read_image(path.with_name(path.stem + "_masks.tif")).astype(np.int32)
        n += 1
        if limit and n >= limit:
            return


def summary(ratios) -> str:
    r = np.asarray(ratios, float)
    ok = np.isfinite(r)
    if not ok.any():
        return "no estimate"
    q1, q2, q3 = np.quantile(r[ok], [0.25, 0.5, 0.75])
    err = np.abs(np.log(r[ok]))
    return (f"{q2:.2f} ({q1:.2f}-{q3:.2f}) | {np.mean(err < math.log(1.25)):.0%} | {err.mean():.3f} | "
            f"{(~ok).sum()}")


def main(argv=None) -> None:
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import size

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="a model file or a bundled model's name")
    ap.add_argument("folder", type=Path)
    ap.add_argument("--bright", action="store_true", help="only images with a bright background")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args(argv)
    model = modelfile.load_model(args.model)
    rows = {(who, rule): [] for who in ("model", "truth") for rule in ("before", "shipped")}
    for _, chw, mask in images(args.folder, args.bright, args.limit):
        truth = size.diameter_of_labels(mask)
        for rule, function in (("before", area_weighted), ("shipped", None)):
            with foreground_rule(function) as measure:
                rows[("model", rule)].append(size.estimate_diameter(model, chw) / truth)
                rows[("truth", rule)].append(measure(mask > 0) / truth)
    n = len(rows[("model", "shipped")])
    print(f"\n{args.model} on {args.folder} ({n} images): the estimate over the masks' own diameter")
    print("| measured on | foreground rule | median ratio (quartiles) | within 1.25x | mean abs log | none |")
    print("|---|---|---|---|---|---|")
    for (who, rule), ratios in rows.items():
        what = "the model's prediction" if who == "model" else "the true foreground"
        print(f"| {what} | {'area-weighted (before)' if rule == 'before' else 'specks left out'} | {summary(ratios)} |")


if __name__ == "__main__":
    main()
