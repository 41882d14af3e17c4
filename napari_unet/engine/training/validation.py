"""A validation score while training: regions the user marked *checked* (fully annotated) are held
out of training, and the model's foreground Dice and instance F1 on them are measured with each
preview, so the user sees when more training stops helping.

A checked region is a connected part of a boolean mask (the widget draws it from rectangles of a
Shapes layer ``<image> checked``; the CLI reads ``--validation`` masks). Its annotations (1
background, 2.. classes) and painted objects are the truth; none of its pixels reaches a
training batch. Instance truth is the painted objects inside it, else the connected parts of the
annotated object pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import UserInputError

HALO = 32  # pixels of context predicted around a region, so its border is scored as inside the image


@dataclass
class HeldOut:
    """One checked region of training image ``index``: its box (y0, y1, x0, x1) and, inside the box,
    the checked pixels ``mask`` (bool), the annotations ``truth`` (int16, 0 = not annotated) and the
    true objects ``instances`` (int32, 0 = none)."""

    index: int
    box: tuple[int, int, int, int]
    mask: np.ndarray
    truth: np.ndarray
    instances: np.ndarray


@dataclass
class Score:
    dice: float  # foreground Dice over the annotated pixels of all checked regions, pooled
    f1: float  # instance F1 at IoU 0.5, mean over the regions
    pixels: int  # annotated pixels scored


def hold_out(annotations: list, checked, objects: list):
    """Split the training data: returns (annotations without the checked pixels, objects without the
    objects that touch a checked region, [HeldOut]).

    annotations: per image (Y, X) ints (painted objects already merged in); checked: None or per
    image None or a (Y, X) bool mask; objects: per image None or (Y, X) int32 objects.
    """
    from scipy import ndimage as ndi

    if checked is None or all(c is None for c in checked):
        return annotations, objects, []
    if len(checked) != len(annotations):
        raise UserInputError(f"got {len(checked)} checked-region mask(s) for {len(annotations)} image(s); "
                             "give one per image (or none)")
    train_anns, train_objs, held = [], [], []
    for i, (ann, mask, obj) in enumerate(zip(annotations, checked, objects)):
        if mask is None or not np.any(mask):
            train_anns.append(ann)
            train_objs.append(obj)
            continue
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != np.shape(ann):
            raise UserInputError(f"a checked-region mask has shape {mask.shape}, its image {np.shape(ann)}; "
                                 "give one of the image's shape")
        parts, _ = ndi.label(mask)
        for k, sl in enumerate(ndi.find_objects(parts), 1):
            region = parts[sl] == k
            truth = np.where(region, ann[sl], 0).astype(np.int16)
            if not (truth > 0).any():
                raise UserInputError("a checked region holds no annotations; paint it fully (background and "
                                     "objects) or remove it")
            held.append(HeldOut(i, (sl[0].start, sl[0].stop, sl[1].start, sl[1].stop), region, truth,
                                _true_instances(truth, None if obj is None else obj[sl], region)))
        train_anns.append(np.where(mask, 0, ann).astype(np.asarray(ann).dtype))
        if obj is not None:
            touching = np.unique(obj[mask])
            obj = np.where(np.isin(obj, touching[touching > 0]), 0, obj).astype(np.int32)
        train_objs.append(obj)
    return train_anns, train_objs, held


def _true_instances(truth, objects, region) -> np.ndarray:
    from scipy import ndimage as ndi

    if objects is not None and (objects[region] > 0).any():
        return np.where(region, objects, 0).astype(np.int32)
    return ndi.label(truth >= 2)[0].astype(np.int32)


def score(model, images: list, held: list[HeldOut], min_size: int = 30, scale: float = 1.0) -> Score:
    """The model's Dice and F1 on the held-out regions. images: the raw training images, channels
    first (C, Y, X); each region is predicted with ``HALO`` pixels of context and the whole image's
    normalisation range; ``scale``: as the model was trained on them (``dataset.training_scale``)."""
    from .. import convert
    from ..model.unet import learned_split
    from ..prediction.metrics import instance_f1
    from ..prediction.pipeline import labels_from_probabilities, preview_maps

    cfg = model.config
    ranges = {}
    both = total = 0
    f1s = []
    for region in held:
        image = images[region.index]
        if region.index not in ranges:
            ranges[region.index] = convert.conversion_for(image, cfg)
        y0, y1, x0, x1 = region.box
        h, w = np.shape(image)[-2:]
        outer = (max(0, y0 - HALO), min(h, y1 + HALO), max(0, x0 - HALO), min(w, x1 + HALO))
        maps = preview_maps(model, image, outer, conversion=ranges[region.index], scale=scale)
        inner = (slice(y0 - outer[0], y1 - outer[0]), slice(x0 - outer[2], x1 - outer[2]))
        split = maps.split[inner] if maps.split is not None and learned_split(model) else None
        labels, _ = labels_from_probabilities(maps.probabilities[(slice(None), *inner)], True, min_size, split,
                                              cfg.split_head)
        annotated = region.truth > 0
        pred_fg, true_fg = labels[annotated] > 0, region.truth[annotated] >= 2
        both += 2 * int((pred_fg & true_fg).sum())
        total += int(pred_fg.sum() + true_fg.sum())
        f1s.append(instance_f1(np.where(region.mask, labels, 0), region.instances))
    pixels = int(sum((r.truth > 0).sum() for r in held))
    return Score(1.0 if total == 0 else both / total, float(np.mean(f1s)) if f1s else float("nan"), pixels)
