"""What the objects a model doubts are: each predicted object classed by the truth under it, with its doubt.

For a model and fields (images with ``<stem>_masks.tif``), ``napari-unet predict --instances`` and the
per-object doubt (``uncertainty.object_doubt``), then each predicted object is

  * ``matched``: IoU > 0.5 with the true object under most of it;
  * ``part``: mostly on true objects, but no such match (a piece of a cut object, or a merge);
  * ``background``: mostly (>= half its pixels) on true background: a speck, debris, a false object.

Prints, per field and class, the count and the doubt's 10/50/90th percentiles and the median area (as a
fraction of the median object's), then what *Accept* would leave out (``uncertainty.unsure_objects``:
the doubted specks) and what leaving out every doubted object would, each with how many are wrong
(not ``matched``). The baseline is the doubt of the matched objects in the same run.

    python benchmarks/doubt.py cells ../shared/data/usiigaci/train/set{1,3,5,7}.tif
    python benchmarks/doubt.py nuclei ../shared/data/dsb2018/train/0*.tif
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def classify(pred: np.ndarray, truth: np.ndarray) -> dict[int, str]:
    """Per predicted id: "matched", "part" or "background" (see the module docstring)."""
    kinds = {}
    for i in np.unique(pred[pred > 0]):
        mask = pred == i
        under, counts = np.unique(truth[mask], return_counts=True)
        on_objects = counts[under > 0]
        if on_objects.sum() < 0.5 * mask.sum():
            kinds[int(i)] = "background"
            continue
        best = under[under > 0][np.argmax(on_objects)]
        iou = (mask & (truth == best)).sum() / (mask | (truth == best)).sum()
        kinds[int(i)] = "matched" if iou > 0.5 else "part"
    return kinds


def main(argv=None) -> None:
    sys.path.insert(0, str(HERE))
    from rounds import predict

    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction.uncertainty import UNSURE_OBJECT, doubted_specks

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a bundled model's name or a model file")
    ap.add_argument("fields", nargs="+", type=Path)
    args = ap.parse_args(argv)
    totals = np.zeros((2, 2), int)  # [accept's, every doubted] x [left out, wrong]
    with tempfile.TemporaryDirectory() as tmp:
        for field in args.fields:
            truth = io.read_image(field.with_name(field.stem + "_masks.tif")).astype(np.int64)
            pred, doubt = predict(args.model, field, Path(tmp))
            kinds = classify(pred, truth)
            areas = np.bincount(pred.ravel())
            median = np.median(areas[list(kinds)])
            for kind in ("matched", "part", "background"):
                ids = [i for i, k in kinds.items() if k == kind]
                if ids:
                    q = np.percentile(doubt[ids], [10, 50, 90])
                    print(f"{field.stem:20s} {kind:10s} {len(ids):4d}  doubt {q[0]:.2f} {q[1]:.2f} {q[2]:.2f}  "
                          f"area {np.median(areas[ids]) / median:.2f} of the median")
            for row, ids in enumerate((doubted_specks(pred, doubt), doubted_specks(pred, doubt, speck=None))):
                wrong = sum(kinds[int(i)] != "matched" for i in ids)
                totals[row] += (len(ids), wrong)
                rule = "accept leaves out (doubted specks)" if row == 0 else f"every object of doubt > {UNSURE_OBJECT}"
                print(f"{'':20s} {rule}: {len(ids)} of {len(kinds)}, {wrong} of them wrong "
                      f"({sum(k != 'matched' for k in kinds.values())} wrong in all)")
    print(f"\nall fields: accept leaves out {totals[0, 0]} ({totals[0, 1]} wrong); every doubted object: "
          f"{totals[1, 0]} ({totals[1, 1]} wrong)")


if __name__ == "__main__":
    main()
