"""Train a bundled starting model (``napari_unet/models/<name>.pt``), seeded and reproducible.

``nuclei``: the 100 BBBC039v1 fields of ``../shared/data/bbbc039_all/train`` (U2OS, Hoechst; CC0;
BBBC039v1, Caicedo et al. 2019, Broad Bioimage Benchmark Collection, Ljosa et al. 2012).
``cells``: the 8 Usiigaci fields of ``../shared/data/usiigaci/train`` (T98G glioma cells, phase
contrast; MIT; Tsai et al., Usiigaci, SoftwareX 2019).
Each field is fully annotated from its instance mask (background 1, object 2) and every object is a
painted whole object, so the split output learns where touching objects part. The fields that score
it (``bbbc039/val``, ``usiigaci/val``) are not among them. Augmented widely
(``TrainConfig.augment_strength="wide"``: inversion, gamma, contrast, blur, noise, scales 0.6-1.6),
so it meets other microscopes and stains.

    python tools/train_bundled_model.py nuclei --steps 8000     # ~1 h on a 2-core CPU, minutes on a GPU
    python tools/train_bundled_model.py cells --steps 6000
    python tools/train_bundled_model.py nuclei --steps 1500 --augment mild --out /tmp/mild.pt   # ablations
    python tools/train_bundled_model.py nuclei --steps 1500 --without invert --out /tmp/no-invert.pt

It prints the model's no-stroke Dice and F1 on the held-out fields at the end (benchmarks/bundled.py
and benchmarks/augmentation.py measure more).
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
        "train": DATA / "bbbc039_all" / "train", "val": DATA / "bbbc039" / "val", "class": "nucleus",
        "val_name": "BBBC039 val",
        "card": {
            "name": "nuclei",
            "description": "generalist nuclei model: fluorescent nuclei (BBBC039 U2OS Hoechst), augmented for "
                           "other microscopes and stains; a starting point to fine-tune with a few strokes",
            "data": "BBBC039v1 (Caicedo et al. 2019; Broad Bioimage Benchmark Collection, Ljosa et al. 2012): "
                    "the 100 fields of its non-test training split, CC0",
            "licence": "CC0 data; model CC-BY-4.0",
        },
    },
    "cells": {
        "train": DATA / "usiigaci" / "train", "val": DATA / "usiigaci" / "val", "class": "cell",
        "val_name": "Usiigaci val",
        "card": {
            "name": "cells",
            "description": "whole cells in phase contrast (Usiigaci T98G glioma cells, touching and irregular), "
                           "augmented for other microscopes; a starting point to fine-tune with a few strokes "
                           "and whole objects",
            "data": "Usiigaci (Tsai et al., Usiigaci, SoftwareX 2019): 8 phase-contrast fields of T98G cells "
                    "with whole-cell instance masks, MIT licence",
            "licence": "MIT data (Tsai et al. 2019); model CC-BY-4.0",
        },
    },
}


def fields(folder: Path):
    from napari_unet.engine.disk import io

    for path in sorted(p for p in folder.glob("*.tif") if not p.stem.endswith("_masks")):
        yield path, io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif")).astype(np.int32)


def main(argv=None) -> None:
    from napari_unet.engine.model import modelfile
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.training import train
    from napari_unet.engine.training.config import WIDE_AUGMENT_PARTS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=list(MODELS), help="which bundled model")
    ap.add_argument("--data", help="training fields (default: the model's)")
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--augment", choices=["wide", "mild"], default="wide")
    ap.add_argument("--without", nargs="+", default=[], choices=WIDE_AUGMENT_PARTS, metavar="PART",
                    help="leave these parts out of the wide augmentation, to measure what each adds: "
                         + ", ".join(WIDE_AUGMENT_PARTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="default: napari_unet/models/<model>.pt")
    ap.add_argument("--finish", metavar="MODEL.pt",
                    help="no training: score MODEL.pt on the held-out fields, write its card (with the figures) and "
                         "save it to --out (e.g. a checkpoint, or a run stopped early)")
    ap.add_argument("--checkpoint-every", type=int, default=1000,
                    help="also save <out>.step<N>.pt every N steps (0: never), to score it early")
    args = ap.parse_args(argv)
    spec = MODELS[args.model]
    args.data = args.data or str(spec["train"])
    args.out = args.out or str(ROOT / "napari_unet" / "models" / f"{args.model}.pt")
    if args.finish:
        return finish(modelfile.load_model(args.finish), args, minutes=None)

    images, annotations, objects = [], [], []
    for _, image, mask in fields(Path(args.data)):
        images.append(image)
        annotations.append(np.where(mask > 0, 2, 1).astype(np.uint8))
        objects.append(mask)
    print(f"{len(images)} fields from {args.data}", file=sys.stderr)
    config = train.TrainConfig(steps=args.steps, time_budget=None, seed=args.seed, batch_size=8, patch_size=128,
                               augment_strength=args.augment, augment_without=tuple(args.without),
                               learning_rate=3e-3, crf_weight=0.0)
    unet = UNetConfig(class_names=[spec["class"]])
    start, last = time.perf_counter(), 0.0
    model = None
    for event in train.fit(images, annotations, config, unet_config=unet, objects=objects):
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
    dice, f1, n = score(model, spec["val"])
    card = model.summary.get("card") or {}
    without = f" --without {' '.join(args.without)}" if args.without else ""
    augment = args.augment + (f" without {', '.join(args.without)}" if args.without else "")
    model.summary["card"] = {**spec["card"], "augment": augment, "steps": model.summary.get("total_steps", args.steps),
                             "seed": args.seed, "minutes": minutes or card.get("minutes"),
                             "figures": {f"{spec['val_name']} ({n} fields), no strokes":
                                         f"Dice {dice:.3f}, F1 {f1:.3f}"},
                             "command": f"python tools/train_bundled_model.py {args.model} --steps {args.steps} "
                                        f"--augment {args.augment}{without}"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    modelfile.save_model(model, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB); {spec['val']}: Dice {dice:.3f}, F1 {f1:.3f}")


def score(model, folder: Path):
    """(mean foreground Dice, mean instance F1, fields) on ``folder`` with no strokes."""
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    dices, f1s = [], []
    for _, image, truth in fields(folder):
        labels = pipeline.predict_image(model, image, "YX", instances=True).labels
        dices.append(dice(labels, truth))
        f1s.append(instance_f1(labels, truth))
    return float(np.mean(dices)), float(np.mean(f1s)), len(dices)


if __name__ == "__main__":
    main()
