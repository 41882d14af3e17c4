"""Train a bundled starting model (``napari_unet/models/<name>.pt``), seeded and reproducible.

``nuclei``: a generalist for nuclei from many microscopes: the 100 BBBC039v1 fields of
``../shared/data/bbbc039_all/train`` (U2OS, Hoechst; CC0; BBBC039v1, Caicedo et al. 2019, Broad
Bioimage Benchmark Collection, Ljosa et al. 2012), three times each, and the 591 images of
``../shared/data/dsb2018/train`` (the 2018 Data Science Bowl stage-1 training set, BBBC038v1,
Caicedo et al. 2019, CC0: fluorescence from many microscopes and magnifications, H&E-like stained
and grey brightfield). Colour images are taken as their luminance (as the model later reads them),
every image is rescaled so that its nuclei come at BBBC039's diameter (the model's ``diameter``;
prediction rescales new images to it), and images with a bright background are inverted
(``invert_bright_background``: stained and brightfield nuclei come bright on dark, as fluorescence).
``cells``: the 8 Usiigaci fields of ``../shared/data/usiigaci/train`` (T98G glioma cells, phase
contrast; MIT; Tsai et al., Usiigaci, SoftwareX 2019; the masks cleaned of stray pieces of outlines),
at their own scale, which it records as its diameter.
Each image is fully annotated from its instance mask (background 1, object 2) and every object is a
painted whole object, so the split output learns where touching objects part. The images that score
it (``bbbc039/val``, ``dsb2018/val``, ``usiigaci/val``) are not among them. Augmented widely
(``TrainConfig.augment_strength="wide"``: inversion, gamma, contrast, blur, noise, scales 0.6-1.6).

    python tools/train_bundled_model.py nuclei --steps 12000     # ~2 h on a 2-core CPU, minutes on a GPU
    python tools/train_bundled_model.py cells --steps 6000
    python tools/train_bundled_model.py nuclei --steps 1500 --augment mild --out /tmp/mild.pt   # ablations
    python tools/train_bundled_model.py nuclei --steps 1500 --without invert --out /tmp/no-invert.pt

It prints the model's no-stroke Dice and F1 on the held-out images at the end (benchmarks/bundled.py
measures more).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODELS = {
    "nuclei": {
        # (folder, times each image is used): BBBC039 three times, so that it keeps a third of the batches
        "train": [(DATA / "bbbc039_all" / "train", 3), (DATA / "dsb2018" / "train", 1)],
        "val": [("BBBC039 val", DATA / "bbbc039" / "val"), ("DSB2018 val", DATA / "dsb2018" / "val")],
        "class": "nucleus", "size_from": DATA / "bbbc039_all" / "train", "invert": True,
        "card": {
            "name": "nuclei",
            "description": "generalist nuclei model: fluorescent nuclei of many microscopes (BBBC039 U2OS Hoechst, "
                           "the 2018 Data Science Bowl), stained and brightfield nuclei as their luminance, "
                           "inverted; objects rescaled to its diameter; a starting point to fine-tune with a few "
                           "strokes",
            "data": "BBBC039v1 (Caicedo et al. 2019; Broad Bioimage Benchmark Collection, Ljosa et al. 2012): the "
                    "100 fields of its non-test training split, CC0; BBBC038v1 (the 2018 Data Science Bowl "
                    "stage-1 training set, Caicedo et al. 2019, Broad Bioimage Benchmark Collection): 591 images, "
                    "CC0",
            "licence": "CC0 data; model CC-BY-4.0",
        },
    },
    "cells": {
        "train": [(DATA / "usiigaci" / "train", 1)], "val": [("Usiigaci val", DATA / "usiigaci" / "val")],
        "class": "cell", "size_from": None, "invert": False,
        "card": {
            "name": "cells",
            "description": "whole cells in phase contrast (Usiigaci T98G glioma cells, touching and irregular), "
                           "augmented for other microscopes; a starting point to fine-tune with a few strokes "
                           "and whole objects",
            "data": "Usiigaci (Tsai et al., Usiigaci, SoftwareX 2019): 8 phase-contrast fields of T98G cells "
                    "with whole-cell instance masks (cleaned of stray pieces of outlines, 2026-12-06), MIT licence",
            "licence": "MIT data (Tsai et al. 2019); model CC-BY-4.0",
        },
    },
}


def fields(folder: Path):
    """(path, image, instance mask) of each image of ``folder``: colour images as their luminance (what
    a grayscale model reads them as, ``convert.LUMINANCE``)."""
    from napari_unet.engine import convert
    from napari_unet.engine.disk import io

    for path in sorted(p for p in folder.glob("*.tif") if not p.stem.endswith("_masks")):
        image = io.read_image(path)
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            image = (image[..., :3].astype(np.float32) @ np.asarray(convert.LUMINANCE, np.float32))
        yield path, image, io.read_image(path.with_name(path.stem + "_masks.tif")).astype(np.int32)


def target_diameter(folder: Path | None) -> float | None:
    """The median object diameter (``size.diameter_of_labels``) of the masks of ``folder`` (None: none)."""
    from napari_unet.engine.prediction.size import diameter_of_labels

    if folder is None:
        return None
    found = [diameter_of_labels(mask) for _, _, mask in fields(folder)]
    return float(np.median([d for d in found if np.isfinite(d)]))


def training_data(spec, diameter: float | None):
    """Images, annotations and objects of the model's training folders, each image rescaled so that its
    objects come at ``diameter`` (None: as they are)."""
    from napari_unet.engine import resample
    from napari_unet.engine.prediction.size import diameter_of_labels, scale_for

    images, annotations, objects = [], [], []
    for folder, times in spec["train"]:
        n = 0
        for _, image, mask in fields(folder):
            if not (mask > 0).any():
                continue
            scale = scale_for(diameter, diameter_of_labels(mask)) if diameter else 1.0
            if scale != 1.0:
                shape = resample.scaled_shape(mask.shape, scale)
                image = resample.resize_image(image[None].astype(np.float32), shape)[0]
                mask = resample.resize_labels(mask, shape)
            annotation = np.where(mask > 0, 2, 1).astype(np.uint8)
            images += [image] * times
            annotations += [annotation] * times
            objects += [mask] * times
            n += 1
        print(f"{n} images from {folder} (x{times})", file=sys.stderr)
    return images, annotations, objects


def main(argv=None) -> None:
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.training import train
    from napari_unet.engine.training.config import WIDE_AUGMENT_PARTS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=list(MODELS), help="which bundled model")
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--augment", choices=["wide", "mild"], default="wide")
    ap.add_argument("--without", nargs="+", default=[], choices=WIDE_AUGMENT_PARTS, metavar="PART",
                    help="leave these parts out of the wide augmentation, to measure what each adds: "
                         + ", ".join(WIDE_AUGMENT_PARTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="default: napari_unet/models/<model>.pt")
    ap.add_argument("--finish", metavar="MODEL.pt",
                    help="no training: score MODEL.pt on the held-out images, write its card (with the figures) and "
                         "save it to --out (e.g. a checkpoint, or a run stopped early)")
    ap.add_argument("--checkpoint-every", type=int, default=1000,
                    help="also save <out>.step<N>.pt every N steps (0: never), to score it early")
    args = ap.parse_args(argv)
    spec = MODELS[args.model]
    args.out = args.out or str(ROOT / "napari_unet" / "models" / f"{args.model}.pt")
    if args.finish:
        return finish(modelfile.load_model(args.finish), args, minutes=None)

    diameter = target_diameter(spec["size_from"])
    images, annotations, objects = training_data(spec, diameter)
    if diameter is None:  # at their own scale: the model records what it learned
        from napari_unet.engine.prediction.size import diameter_of_labels

        diameter = float(np.median([diameter_of_labels(o) for o in objects]))
    print(f"{len(images)} training images, objects at {diameter:.1f} px", file=sys.stderr)
    config = train.TrainConfig(steps=args.steps, time_budget=None, seed=args.seed, batch_size=8, patch_size=128,
                               augment_strength=args.augment, augment_without=tuple(args.without),
                               learning_rate=3e-3, crf_weight=0.0)
    unet = UNetConfig(class_names=[spec["class"]], diameter=diameter, invert_bright_background=spec["invert"])
    start, last = time.perf_counter(), 0.0
    model = None
    for event in train.fit(images, annotations, config, unet_config=unet, objects=objects, diameter=None):
        if isinstance(event, train.Started):
            model = event.model
        elif isinstance(event, train.Step) and args.checkpoint_every and event.step % args.checkpoint_every == 0:
            modelfile.save_model(model, Path(args.out).with_suffix(f".step{event.step}.pt"))
        if isinstance(event, train.Step) and event.elapsed - last > 60:
            last = event.elapsed
            print(f"step {event.step}/{args.steps}  loss {event.loss:.4f}  {event.elapsed / 60:.1f} min",
                  file=sys.stderr, flush=True)
    finish(model, args, minutes=round((time.perf_counter() - start) / 60, 1))


def finish(model, args, minutes) -> None:
    """Score the model, write its card (data, licence, training, figures) into it and save it to --out."""
    from napari_unet.engine.model import modelfile

    spec = MODELS[args.model]
    figures = {}
    for name, folder in spec["val"]:
        dice, f1, n = score(model, folder)
        figures[f"{name} ({n} images), no strokes"] = f"Dice {dice:.3f}, F1 {f1:.3f}"
        print(f"{name}: Dice {dice:.3f}, F1 {f1:.3f} ({n} images)")
    card = model.summary.get("card") or {}
    without = f" --without {' '.join(args.without)}" if args.without else ""
    augment = args.augment + (f" without {', '.join(args.without)}" if args.without else "")
    model.summary["card"] = {**spec["card"], "augment": augment, "steps": model.summary.get("total_steps", args.steps),
                             "seed": args.seed, "minutes": minutes or card.get("minutes"),
                             "diameter": model.config.diameter, "figures": figures,
                             "command": f"python tools/train_bundled_model.py {args.model} --steps {args.steps} "
                                        f"--augment {args.augment}{without}"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    modelfile.save_model(model, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB)")


def score(model, folder: Path):
    """(mean foreground Dice, mean instance F1, images) on ``folder`` with no strokes, as the files are
    (colour images too), the diameter estimated."""
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    dices, f1s = [], []
    for path in sorted(p for p in folder.glob("*.tif") if not p.stem.endswith("_masks")):
        image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))
        labels = pipeline.predict_image(model, image, instances=True).labels
        dices.append(dice(labels, truth))
        f1s.append(instance_f1(labels, truth))
    return float(np.mean(dices)), float(np.mean(f1s)), len(dices)


if __name__ == "__main__":
    main()
