"""The bundled models (issues #24, #45): useful before the first stroke, and a better start.

1. No strokes: foreground Dice and instance F1 (IoU 0.5) of each model on BBBC039 ``val/`` as it is,
   and on the same fields made to look like other microscopes and stains (what a generalist meets):
   inverted (dark nuclei on a bright background, as in brightfield), gamma 0.5, blurred (sigma 2 px)
   with noise, half, 1.5x and twice the pixel size, and the grey field saved as RGB.
2. ``--kinds``: the same on DSB2018 ``val/`` as the files are (RGB), by kind (fluorescence, stained,
   grey brightfield: told apart by the image's colour and the masks' polarity; the stained tiles also
   recoloured as other labs' stains, more eosin and more haematoxylin), and on Usiigaci ``val/`` (each
   model where it applies), with the diameter estimated (``predict --diameter auto``) and not.
   The model ``auto`` is what Start "auto" and ``predict auto`` use before any stroke: for each image the
   bundled model ``start.start_for_image`` picks (nuclei-stained for a bright background, else nuclei).
2. Fine-tuning (``--finetune``): with the scribbles of ``scribbles.py`` (seeded per field), 10 s of
   training from the bundled model against 30 s from scratch, in the same run (wall-clock budgets:
   run it on an otherwise idle machine).

    python benchmarks/bundled.py                                   # the bundled model, no strokes
    python benchmarks/bundled.py --finetune                        # + 10 s fine-tuned vs 30 s scratch
    python benchmarks/bundled.py --models /tmp/wide.pt /tmp/mild.pt   # augmentation ablation
    python benchmarks/bundled.py --models nuclei nuclei-stained auto --kinds   # report 14
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def looks(image, mask):
    """{condition: (image, mask)}: the field as it is and as other microscopes might show it."""
    from scipy import ndimage as ndi
    from skimage.transform import rescale

    x = image.astype(np.float32)
    lo, hi = np.percentile(x, (0.5, 99.9))
    x = np.clip((x - lo) / (hi - lo), 0, 1)
    rng = np.random.default_rng(0)
    as16 = lambda v: (np.clip(v, 0, 1) * 60000).astype(np.uint16)
    small = rescale(x, 0.5, order=1, anti_aliasing=True)
    large = rescale(x, 1.5, order=1)
    double = rescale(x, 2.0, order=1)
    return {
        "as is": (image, mask),
        "inverted": (as16(1 - x), mask),
        "gamma 0.5": (as16(x ** 0.5), mask),
        "blur 2 + noise": (as16(ndi.gaussian_filter(x, 2) + rng.normal(0, 0.05, x.shape)), mask),
        "half the pixels": (as16(small), ndi.zoom(mask, 0.5, order=0)),
        "1.5x the pixels": (as16(large), ndi.zoom(mask, 1.5, order=0)),
        "2x the pixels": (as16(double), ndi.zoom(mask, 2.0, order=0)),
        "as RGB": ((np.repeat(x[..., None], 3, -1) * 255).astype(np.uint8), mask),
    }


def recoloured(image, how: str):
    """An RGB uint8 image as another lab's stain might show it: "more eosin" (pinker) or "more
    haematoxylin" (bluer), a gamma per channel."""
    gammas = {"more eosin": (0.6, 1.0, 0.9), "more haematoxylin": (1.4, 1.1, 0.7)}[how]
    x = image[..., :3].astype(np.float32) / 255
    return (np.clip(x ** np.asarray(gammas, np.float32), 0, 1) * 255).astype(np.uint8)


class ByImage:
    """The bundled model Start "auto" (and ``predict auto``) takes for each image before any stroke
    (``start.start_for_whole_image``), loaded once."""

    def __init__(self):
        self.loaded = {}

    def for_image(self, image):
        from napari_unet.engine.model import modelfile
        from napari_unet.engine.training.start import start_for_whole_image

        name, _ = start_for_whole_image(image)
        if name not in self.loaded:
            self.loaded[name] = modelfile.load_model(name)
        return self.loaded[name]


def model_for(model, image):
    """``model``, or for a ``ByImage`` the bundled model it picks for ``image``."""
    return model.for_image(image) if isinstance(model, ByImage) else model


def fields(split: Path):
    from napari_unet.engine.disk import io

    for path in sorted(p for p in split.glob("*.tif") if not p.stem.endswith("_masks")):
        yield path, io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))


def no_strokes(models: dict, split: Path) -> None:
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    scores = {}
    for _, image, mask in fields(split):
        for condition, (img, truth) in looks(image, mask).items():
            for name, model in models.items():
                labels = pipeline.predict_image(model_for(model, img), img, instances=True).labels
                scores.setdefault((name, condition), []).append((dice(labels, truth), instance_f1(labels, truth)))
    conditions = list(dict.fromkeys(c for _, c in scores))
    print(f"\nno strokes, {split}: mean Dice / F1 over {len(scores[next(iter(scores))])} fields")
    print("| model | " + " | ".join(conditions) + " |\n|---|" + "---|" * len(conditions))
    for name in models:
        cells = [np.mean(scores[(name, c)], axis=0) for c in conditions]
        print(f"| {name} | " + " | ".join(f"{d:.3f} / {f:.3f}" for d, f in cells) + " |")


def kind_of(image, mask) -> str:
    """fluorescence, stained (colour, bright background) or brightfield (grey, bright background)."""
    grey = image.ndim == 2 or (np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2]))
    luminance = image if image.ndim == 2 else image[..., :3].astype(float).mean(-1)
    bright_background = luminance[mask == 0].mean() > luminance[mask > 0].mean()
    return "fluorescence" if not bright_background else ("brightfield" if grey else "stained")


def kinds(models: dict, limit=None) -> None:
    """No strokes on DSB2018 val by kind and on Usiigaci val: each model, the diameter estimated and not."""
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    scores = {}
    sets = [("dsb2018", DATA / "dsb2018" / "val"), ("usiigaci", DATA / "usiigaci" / "val")]
    for data, split in sets:
        for i, (_, image, mask) in enumerate(fields(split)):
            if limit and i >= limit:
                break
            kind = f"DSB2018 {kind_of(image, mask)}" if data == "dsb2018" else "Usiigaci"
            versions = [(kind, image)] + ([(f"{kind}, {how}", recoloured(image, how))
                                        for how in ("more eosin", "more haematoxylin")] if kind.endswith("stained") else [])
            for group, img in versions:
                for name, model in models.items():
                    for diameter in ("auto", None):
                        found = pipeline.predict_image(model_for(model, img), img, instances=True, diameter=diameter)
                        scores.setdefault((name, group, diameter), []).append((dice(found.labels, mask),
                                                                              instance_f1(found.labels, mask)))
    groups = list(dict.fromkeys(k for _, k, _ in scores))
    print("\nno strokes, the files as they are: mean Dice / F1 (images); diameter estimated | as it is")
    print("| model | " + " | ".join(groups) + " |\n|---|" + "---|" * len(groups))
    for name in models:
        cells = []
        for kind in groups:
            auto, plain = scores.get((name, kind, "auto"), []), scores.get((name, kind, None), [])
            if not auto:
                cells.append("")
                continue
            (da, fa), (dp, fp) = np.mean(auto, 0), np.mean(plain, 0)
            cells.append(f"{da:.3f} / {fa:.3f} \\| {dp:.3f} / {fp:.3f} ({len(auto)})")
        print(f"| {name} | " + " | ".join(cells) + " |")


def finetune(split: Path, start_budget: float, scratch_budget: float) -> None:
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training import train
    from napari_unet.engine.training.scribbles import simulate_scribbles

    rows = []
    for i, (path, image, mask) in enumerate(fields(split)):
        scribbles = simulate_scribbles(mask, seed=i)
        row = {}
        for arm, init, budget in (("bundled, no strokes", "nuclei", 0.0),
                                  (f"bundled + {start_budget:.0f} s", "nuclei", start_budget),
                                  (f"scratch {scratch_budget:.0f} s", None, scratch_budget)):
            model = modelfile.load_model(init) if init else None
            if budget > 0:
                model = train.train([image], [scribbles], train.TrainConfig(time_budget=budget, seed=i), model=model)
            labels = pipeline.predict_image(model, image, "YX", instances=True).labels
            row[arm] = (dice(labels, mask), instance_f1(labels, mask), model.summary["rounds"][-1]["steps"]
                        if budget > 0 else 0)
        rows.append(row)
        print(path.stem, {k: tuple(round(v, 3) for v in r) for k, r in row.items()}, flush=True)
    print(f"\nfine-tuning with the scribbles of scribbles.py, {split}, {len(rows)} fields (mean)")
    print("| start | Dice | F1 | steps |\n|---|---|---|---|")
    for arm in rows[0]:
        d, f, s = np.mean([r[arm] for r in rows], axis=0)
        print(f"| {arm} | {d:.3f} | {f:.3f} | {s:.0f} |")


def main(argv=None) -> None:
    from napari_unet.engine.model import modelfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA / "bbbc039" / "val"))
    ap.add_argument("--models", nargs="+", default=["nuclei"],
                    help="model files or bundled names to compare; auto: the bundled model picked for each image")
    ap.add_argument("--finetune", action="store_true", help="also: 10 s from the bundled model vs 30 s from scratch")
    ap.add_argument("--kinds", action="store_true", help="also: DSB2018 val by kind and Usiigaci val")
    ap.add_argument("--limit", type=int, help="with --kinds: the first N images of each set")
    ap.add_argument("--budgets", type=float, nargs=2, default=[10.0, 30.0], metavar=("FINETUNE", "SCRATCH"))
    args = ap.parse_args(argv)
    models = {Path(m).stem if m.endswith(".pt") else m: ByImage() if m == "auto" else modelfile.load_model(m)
              for m in args.models}
    no_strokes(models, Path(args.data))
    if args.kinds:
        kinds(models, args.limit)
    if args.finetune:
        finetune(Path(args.data), *args.budgets)


if __name__ == "__main__":
    main()
