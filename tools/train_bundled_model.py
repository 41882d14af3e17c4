"""Train a bundled starting model (``napari_unet/models/<name>.pt``), seeded and reproducible.

``nuclei``: the 100 BBBC039v1 fields of ``../shared/data/bbbc039_all/train`` (U2OS, Hoechst; CC0;
BBBC039v1, Caicedo et al. 2019, Broad Bioimage Benchmark Collection, Ljosa et al. 2012), at their own
scale, which it records as its diameter (prediction rescales new images to it); colour images are read
as their luminance (stained and brightfield nuclei, dark on light, it learned by the augmentation's
inversion; inverting them before the network scored lower).
``nuclei-generalist`` (measured, not shipped: benchmarks/reports/14-generalist.md): the same fields three
times each and the 591 images of ``../shared/data/dsb2018/train`` (the 2018 Data Science Bowl stage-1
training set, BBBC038v1, Caicedo et al. 2019, CC0: fluorescence from many microscopes and
magnifications, H&E-like stained and grey brightfield), every image rescaled so that its nuclei come at
BBBC039's diameter, colour as luminance, bright backgrounds inverted.
``nuclei-stained``: the DSB2018 training images with a bright background (``convert.has_bright_background``:
99 H&E-like stained tissue tiles and 16 grey brightfield fields), as their luminance, every image rescaled to
the set's median nucleus diameter; Start "auto" (and ``predict auto``) takes it for images with a bright
background (``--colour``: the same on the RGB colours, the ablation that scored lower; report 14).
``cells``: the 8 Usiigaci fields of ``../shared/data/usiigaci/train`` (T98G glioma cells, phase
contrast; MIT; Tsai et al., Usiigaci, SoftwareX 2019; the masks cleaned of stray pieces of outlines),
at their own scale, which it records as its diameter.
Each image is fully annotated from its instance mask (background 1, object 2) and every object is a
painted whole object, so the split output learns where touching objects part. The images that score
it (``bbbc039/val``, ``dsb2018/val``, ``usiigaci/val``) are not among them. Augmented widely
(``TrainConfig.augment_strength="wide"``: inversion, gamma, contrast, blur, noise, scales 0.6-1.6).

    python tools/train_bundled_model.py nuclei --steps 8000      # ~1 h on a 2-core CPU, minutes on a GPU
    python tools/train_bundled_model.py cells --steps 6000
    python tools/train_bundled_model.py nuclei-stained --steps 3000
    python tools/train_bundled_model.py nuclei-generalist --steps 16000 --out /tmp/generalist.pt
    python tools/train_bundled_model.py nuclei --finish napari_unet/models/nuclei.pt   # rescore, record the card
    python tools/train_bundled_model.py nuclei --steps 1500 --augment mild --out /tmp/mild.pt   # ablations
    python tools/train_bundled_model.py nuclei --steps 1500 --without invert --out /tmp/no-invert.pt

It prints the model's no-stroke Dice and F1 on the held-out images at the end (benchmarks/bundled.py
measures more).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
MODELS = {
    "nuclei": {
        # the shipped nuclei model: BBBC039 alone scored better than the generalist below on BBBC039 and on
        # DSB2018's fluorescence (benchmarks/reports/14-generalist.md); it reads other microscopes through
        # the colour conversion, the inversion of bright backgrounds and its diameter
        "train": [(DATA / "bbbc039_all" / "train", 1)],
        "val": [("BBBC039 val", DATA / "bbbc039" / "val"), ("DSB2018 val", DATA / "dsb2018" / "val")],
        # not inverted: it learned inverted images by augmentation, and inverting stained images cost F1
        "class": "nucleus", "size_from": None, "invert": False,
        "card": {
            "name": "nuclei",
            "description": "nuclei in fluorescence (BBBC039 U2OS Hoechst), augmented for other microscopes and "
                           "stains (inverted images too); colour images read as their luminance, images "
                           "rescaled to its diameter; a starting point to fine-tune with a few strokes",
            "data": "BBBC039v1 (Caicedo et al. 2019; Broad Bioimage Benchmark Collection, Ljosa et al. 2012): the "
                    "100 fields of its non-test training split, CC0",
            "licence": "CC0 data; model CC-BY-4.0",
        },
    },
    "nuclei-generalist": {
        # (folder, times each image is used): BBBC039 three times, so that it keeps a third of the batches.
        # Measured, not shipped: it lost BBBC039 F1 (0.84 against 0.91) for little on DSB2018
        "train": [(DATA / "bbbc039_all" / "train", 3), (DATA / "dsb2018" / "train", 1)],
        "val": [("BBBC039 val", DATA / "bbbc039" / "val"), ("DSB2018 val", DATA / "dsb2018" / "val")],
        "class": "nucleus", "size_from": DATA / "bbbc039_all" / "train", "invert": True,
        "card": {
            "name": "nuclei-generalist",
            "description": "generalist nuclei model: fluorescent nuclei of many microscopes (BBBC039 U2OS Hoechst, "
                           "the 2018 Data Science Bowl), stained and brightfield nuclei as their luminance, "
                           "inverted; objects rescaled to its diameter",
            "data": "BBBC039v1 (Caicedo et al. 2019; Broad Bioimage Benchmark Collection, Ljosa et al. 2012): the "
                    "100 fields of its non-test training split, CC0; BBBC038v1 (the 2018 Data Science Bowl "
                    "stage-1 training set, Caicedo et al. 2019, Broad Bioimage Benchmark Collection): 591 images, "
                    "CC0",
            "licence": "CC0 data; model CC-BY-4.0",
        },
    },
    "nuclei-stained": {
        # stained and brightfield nuclei, dark on light: the DSB2018 training images with a bright background
        # (99 H&E-like stained tiles, 16 grey brightfield fields), as their luminance (the same recipe on the
        # RGB colours, --colour, scored lower, and lower again on recoloured tiles: report 14), every image
        # rescaled to the set's median nucleus size; Start "auto" takes it for images with a bright background
        "train": [(DATA / "dsb2018" / "train", 1)], "select": "bright", "colour": False,
        "val": [("DSB2018 val, bright background", DATA / "dsb2018" / "val")],
        "class": "nucleus", "size_from": "self", "invert": False, "without": ("invert",),
        "card": {
            "name": "nuclei-stained",
            "description": "nuclei in stained (H&E-like) and brightfield images, dark on a light background; "
                           "colour images read as their luminance, images rescaled to its diameter; the bundled "
                           "model Start auto takes for an image with a bright background; a starting point to "
                           "fine-tune with a few strokes",
            "data": "BBBC038v1 (the 2018 Data Science Bowl stage-1 training set, Caicedo et al. 2019, Broad "
                    "Bioimage Benchmark Collection): its 115 training images with a bright background (99 "
                    "stained tissue tiles, 16 grey brightfield fields), CC0",
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


def fields(folder: Path, colour: bool = False, select: str | None = None):
    """(path, image, instance mask) of each image of ``folder``: colour images as their luminance (what
    a grayscale model reads them as, ``convert.LUMINANCE``), or with ``colour`` as RGB (Y, X, 3), grey
    images too (three equal channels); ``select="bright"``: only images with a bright background
    (``convert.has_bright_background``, the rule Start "auto" picks a model by)."""
    from napari_unet.engine import convert
    from napari_unet.engine.disk import io

    for path in sorted(p for p in folder.glob("*.tif") if not p.stem.endswith("_masks")):
        image = io.read_image(path)
        rgb = image.ndim == 3 and image.shape[-1] in (3, 4)
        if select == "bright" and not convert.has_bright_background(np.moveaxis(image, -1, 0) if rgb else image[None]):
            continue
        if rgb and not colour:
            image = (image[..., :3].astype(np.float32) @ np.asarray(convert.LUMINANCE, np.float32))
        elif colour:
            image = image[..., :3] if rgb else np.repeat(image[..., None], 3, axis=-1)
        yield path, image, io.read_image(path.with_name(path.stem + "_masks.tif")).astype(np.int32)


def spec_fields(spec, folder: Path, colour: bool = False):
    """``fields`` of one of ``spec``'s folders, read as the model reads them (``colour``: as RGB, the
    ablation of a model on the colours)."""
    return fields(folder, colour=spec.get("colour", False) or colour, select=spec.get("select"))


def target_diameter(spec) -> float | None:
    """The diameter every training image is rescaled to: the median object diameter
    (``size.diameter_of_labels``) of the masks of ``spec["size_from"]`` (a folder, or "self": the model's
    own training images), that number of px when it is one, or None (each image at its own scale)."""
    if spec["size_from"] is None:
        return None
    if isinstance(spec["size_from"], (int, float)):  # a diameter chosen by measurement
        return float(spec["size_from"])
    return own_diameter(spec) if spec["size_from"] == "self" else _median_diameter([spec["size_from"]], {})


def own_diameter(spec) -> float:
    """The median object diameter of the model's training masks, at their own scale."""
    return _median_diameter([folder for folder, _ in spec["train"]], spec)


def _median_diameter(folders, spec) -> float:
    from napari_unet.engine.prediction.size import diameter_of_labels

    found = [diameter_of_labels(mask) for folder in folders for _, _, mask in spec_fields(spec, folder)]
    return float(np.median([d for d in found if np.isfinite(d)]))


def training_data(spec, diameter: float | None, colour: bool = False):
    """Images, annotations and objects of the model's training folders, each image rescaled so that its
    objects come at ``diameter`` (None: as they are)."""
    from napari_unet.engine import resample
    from napari_unet.engine.prediction.size import diameter_of_labels, scale_for

    images, annotations, objects = [], [], []
    for folder, times in spec["train"]:
        n = 0
        for _, image, mask in spec_fields(spec, folder, colour):
            if not (mask > 0).any():
                continue
            scale = scale_for(diameter, diameter_of_labels(mask)) if diameter else 1.0
            if scale != 1.0:
                shape = resample.scaled_shape(mask.shape, scale)
                chw = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
                resized = resample.resize_image(chw.astype(np.float32), shape)
                image = resized[0] if image.ndim == 2 else np.moveaxis(resized, 0, -1)
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
    ap.add_argument("--without", nargs="+", default=None, choices=WIDE_AUGMENT_PARTS, metavar="PART",
                    help="leave these parts out of the wide augmentation, to measure what each adds: "
                         + ", ".join(WIDE_AUGMENT_PARTS) + " (default: the model's recipe; nuclei-stained: invert)")
    ap.add_argument("--diameter", type=float, metavar="PX",
                    help="rescale every training image so that its objects come at PX (default: the recipe's)")
    ap.add_argument("--colour", action="store_true",
                    help="train on the images' RGB colours (a 3-channel network; grey images as three equal "
                         "channels) instead of their luminance: the ablation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="default: napari_unet/models/<model>.pt")
    ap.add_argument("--finish", metavar="MODEL.pt",
                    help="no training: score MODEL.pt on the held-out images, write its card (with the figures) and "
                         "save it to --out (e.g. a checkpoint, or a run stopped early)")
    ap.add_argument("--note", help="with --finish: a line for the card (what differs from the recipe)")
    ap.add_argument("--checkpoint-every", type=int, default=1000,
                    help="also save <out>.step<N>.pt every N steps (0: never), to score it early")
    args = ap.parse_args(argv)
    spec = MODELS[args.model]
    args.without = list(spec.get("without", ())) if args.without is None else args.without
    args.out = args.out or str(ROOT / "napari_unet" / "models" / f"{args.model}.pt")
    if args.finish:
        model = modelfile.load_model(args.finish)
        step = re.search(r"\.step(\d+)\.pt$", args.finish)  # a checkpoint's name says its step
        if step and not model.summary.get("total_steps"):
            model.summary["total_steps"] = int(step.group(1))
        return finish(model, args, minutes=None)

    diameter = args.diameter or target_diameter(spec)
    images, annotations, objects = training_data(spec, diameter, args.colour)
    diameter = diameter or own_diameter(spec)  # at their own scale: the model records what it learned
    print(f"{len(images)} training images, objects at {diameter:.1f} px", file=sys.stderr)
    config = train.TrainConfig(steps=args.steps, time_budget=None, seed=args.seed, batch_size=8, patch_size=128,
                               augment_strength=args.augment, augment_without=tuple(args.without),
                               learning_rate=3e-3, crf_weight=0.0)
    colour = spec.get("colour", False) or args.colour  # RGB images (Y, X, 3) for a 3-channel network
    unet = UNetConfig(class_names=[spec["class"]], diameter=diameter, invert_bright_background=spec["invert"],
                      in_channels=3 if colour else 1, channel_axis="last" if colour else "none")
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
    if model.config.diameter is None:  # a model trained before diameters: record the one it learned
        model.config.diameter = target_diameter(spec) or own_diameter(spec)
    model.config.invert_bright_background = spec["invert"]
    figures = {}
    for name, folder in spec["val"]:
        dice, f1, n = score(model, folder, spec.get("select"))
        figures[f"{name} ({n} images), no strokes"] = f"Dice {dice:.3f}, F1 {f1:.3f}"
        print(f"{name}: Dice {dice:.3f}, F1 {f1:.3f} ({n} images)")
    card = model.summary.get("card") or {}
    without = f" --without {' '.join(args.without)}" if args.without else ""
    augment = args.augment + (f" without {', '.join(args.without)}" if args.without else "")
    model.summary["card"] = {**spec["card"], "augment": augment, "steps": model.summary.get("total_steps", args.steps),
                             "seed": args.seed, "minutes": minutes or card.get("minutes"),
                             "diameter": model.config.diameter, "figures": figures,
                             "command": card.get("command") or f"python tools/train_bundled_model.py {args.model} "
                                                                 f"--steps {args.steps} --augment {args.augment}{without}"
                                                                 + (f" --diameter {args.diameter:g}" if args.diameter else "")
                                                                 + (" --colour" if args.colour else "")}
    if args.finish:
        model.summary["card"]["finished"] = (f"python tools/train_bundled_model.py {args.model} --finish MODEL.pt "
                                             f"(diameter, inversion and figures recorded)")
    if getattr(args, "note", None):
        model.summary["card"]["note"] = args.note
    done = model.summary["card"]["steps"]
    checkpoint = args.finish is None or re.search(r"\.step\d+\.pt$", args.finish)
    if checkpoint and done and done < args.steps:  # say so: a checkpoint has not reached the schedule's low learning rates
        model.summary["card"]["note"] = (f"checkpoint at step {done} of a {args.steps}-step schedule "
                                         f"(the run was stopped there)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    modelfile.save_model(model, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.1f} MB)")


def score(model, folder: Path, select: str | None = None):
    """(mean foreground Dice, mean instance F1, images) on ``folder`` (``select`` as in ``fields``) with no
    strokes, as the files are (colour images too), the diameter estimated."""
    from napari_unet.engine import convert
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1

    dices, f1s = [], []
    for path in sorted(p for p in folder.glob("*.tif") if not p.stem.endswith("_masks")):
        image, truth = io.read_image(path), io.read_image(path.with_name(path.stem + "_masks.tif"))
        chw = np.moveaxis(image, -1, 0) if image.ndim == 3 else image[None]
        if select == "bright" and not convert.has_bright_background(chw):
            continue
        labels = pipeline.predict_image(model, image, instances=True).labels
        dices.append(dice(labels, truth))
        f1s.append(instance_f1(labels, truth))
    return float(np.mean(dices)), float(np.mean(f1s)), len(dices)


if __name__ == "__main__":
    main()
