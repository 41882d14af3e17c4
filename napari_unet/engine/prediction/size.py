"""Object size: the typical diameter of the objects in a mask, and the scale at which a model sees them
at the size it was trained on.

A model records the diameter of the objects it learned (``UNetConfig.diameter``); an image whose
objects are another size is rescaled for the network by ``model diameter / image diameter`` and its
masks come back at the image's size (``predict``), as Cellpose does with its diameter. Nuclei twice
the trained size are otherwise cut into pieces, and half the size missed.

The diameter is measured the same way on what the user painted, on full training masks and on a
prediction: twice the largest distance from an object's pixels to its edge (its inscribed circle),
the median over the objects. For instance masks each object is measured to its own edge
(``diameter_of_labels``). A prediction's objects may be cut in pieces where the model sees them at
the wrong size, so it is measured on its foreground (``diameter_of_foreground``): each connected part
that is about one or two objects (its area at most ``MAX_BLOB_AREA`` times its inscribed disc's: a
doublet still gives a nucleus's width, a nucleus cut in pieces is still whole there) gives its largest
distance to the background, and the diameter is the median over the parts that are not specks (at
least ``SPECK_FRACTION`` of the area-weighted median's width); confluent clusters say nothing
about their objects and are left out. On a disc of radius r both give 2r (within a pixel).
"""

from __future__ import annotations

import math

import numpy as np

MIN_OBJECT_PIXELS = 12  # smaller specks are not objects to size (a 4-px-wide blob at least)
MAX_BLOB_AREA = 2.5  # a foreground part larger than this many of its inscribed discs is a cluster
# a part narrower than this fraction of the area-weighted median width is a speck (a stain's texture).
# Weighting by area alone kept specks from outvoting the objects but let the widest parts (doublets,
# large nuclei) decide: on the true masks of the 115 bright-background DSB2018 training images it gave
# 1.27x the objects' own diameter (median), 1.07x with specks left out and the rest counted alike
SPECK_FRACTION = 0.25
RESCALE_TOLERANCE = 1.25  # within this factor of the model's diameter an image is not rescaled
# ... when the diameter is the model's own estimate: a wide-augmented model has seen its objects at
# 0.6-1.6x, while a first prediction that cuts objects in pieces (or fuses specks of a stain) can be off
# by 1.3-1.5x; rescaling by such an estimate cost more than it gained (benchmarks/reports/14-generalist.md)
ESTIMATE_TOLERANCE = 1.5
SETTLE_TOLERANCE = 1.2  # an estimate within this factor of the diameter a model last trained at is that diameter
MIN_SCALE, MAX_SCALE = 0.25, 4.0  # rescaling is clipped to these
REMEMBERED_IMAGES = 256  # a model's summary keeps the diameter of at most this many images it trained on


def diameter_of_labels(labels) -> float:
    """The median over the objects of ``labels`` (int ids, 0 = none; (Y, X) or (Z, Y, X)) of twice their
    largest distance to their own edge, in pixels; nan without objects."""
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    sizes = []
    for i, box in enumerate(ndi.find_objects(labels.astype(np.int64, copy=False)), start=1):
        if box is None:
            continue
        mask = labels[box] == i
        if mask.sum() < MIN_OBJECT_PIXELS:
            continue
        sizes.append(2 * ndi.distance_transform_edt(np.pad(mask, 1)).max())
    return float(np.median(sizes)) if sizes else float("nan")


def diameter_of_foreground(mask) -> float:
    """The median over the connected parts of ``mask`` (bool, (Y, X)) that are one or two objects and not
    specks (see the module docstring) of twice their largest distance to the background, in pixels; nan
    when there is no such part (no foreground, or only confluent clusters)."""
    peaks, sizes = foreground_parts(mask)
    if not len(peaks):
        return float("nan")
    typical = weighted_median(peaks, sizes)
    return float(2 * np.median(peaks[peaks >= SPECK_FRACTION * typical]))


def foreground_parts(mask) -> tuple[np.ndarray, np.ndarray]:
    """(largest distance to the background (px), area (px)) of each connected part of ``mask`` (bool,
    (Y, X)) that is about one or two objects: at least ``MIN_OBJECT_PIXELS``, at most ``MAX_BLOB_AREA``
    times its inscribed disc (larger parts are clusters)."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask, bool)
    if not mask.any():
        return np.zeros(0), np.zeros(0)
    distance = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    parts, n = ndi.label(mask)
    sizes = np.bincount(parts.ravel(), minlength=n + 1)[1:]
    peaks = np.asarray(ndi.maximum(distance, parts, np.arange(1, n + 1)), float)
    single = (sizes >= MIN_OBJECT_PIXELS) & (sizes <= MAX_BLOB_AREA * np.pi * np.maximum(peaks, 0.5) ** 2)
    return peaks[single], sizes[single]


def weighted_median(values, weights) -> float:
    """The value below and above which half the weight lies. Weighted by area, a prediction's many small
    specks (the texture of a stain read as foreground) do not outvote its few real objects (what is a
    speck is judged against this median)."""
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights, float)[order])
    return float(np.asarray(values)[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


def scale_for(model_diameter, image_diameter, tolerance=RESCALE_TOLERANCE) -> float:
    """How much to rescale an image for the network: ``model_diameter / image_diameter``, 1.0 when either
    is unknown or they agree within ``tolerance`` (an estimated diameter: ``scale_for_estimate``),
    clipped to ``MIN_SCALE``..``MAX_SCALE``."""
    if model_diameter is None or image_diameter is None or not (math.isfinite(image_diameter) and image_diameter > 0):
        return 1.0
    scale = float(model_diameter) / float(image_diameter)
    if 1 / tolerance <= scale <= tolerance:
        return 1.0
    return float(np.clip(scale, MIN_SCALE, MAX_SCALE))


def scale_for_estimate(model_diameter, estimate) -> float:
    """``scale_for`` an estimated diameter: 1.0 within ``RESCALE_TOLERANCE``, the full ratio beyond
    ``ESTIMATE_TOLERANCE``, and between the two a ramp (in log scale) from one to the other. An estimate
    moves a little from one round's model to the next (14.6 px, then 15.1 px, for a model of 22 px):
    with a step at the tolerance the image went from 1.51x to 1.0x between two rounds. (A ramp up to
    2.25x instead cost 0.015-0.03 F1 with no strokes: rescaling in full beyond 1.5x measured better.)"""
    ratio = scale_for(model_diameter, estimate, 1.0)  # the full ratio, clipped (1.0: unknown)
    if ratio == 1.0:
        return 1.0
    beyond, low, high = abs(math.log(ratio)), math.log(RESCALE_TOLERANCE), math.log(ESTIMATE_TOLERANCE)
    weight = min(max((beyond - low) / (high - low), 0.0), 1.0)
    return float(math.exp(math.copysign(beyond * weight, math.log(ratio))))


class Estimated(float):
    """A diameter (px) that ``estimate_diameter`` measured on an image, not one the user gave: rescaled
    for as an estimate (``scale_for_estimate``); nan when the model found nothing to measure. Lets a
    caller that already measured the image with the same model (the start choice) hand the figure on
    instead of predicting again (0.4 s on a 520 x 696 field)."""


ESTIMATE_SIDE = 768  # px: the centre crop a diameter is estimated on (2048^2: a seventh of the image)


def estimate_diameter(model, chw) -> float:
    """The diameter (px) of the objects in ``chw`` (one plane, channels first) as ``model`` sees them.

    An image the model trained on gets the diameter it was trained with (``remembered``; nan where it was
    trained as it is): a model predicts, and trains again on, an image at the scale it learned it at.
    Measured instead, a tile of a DSB2018 field that the bundled model could not size (round 1 trained it
    as it is) measured 0.55x by the round-1 model, and fell from F1 0.605 to 0.357.
    A model that has trained on an image at a scale first looks at ``chw`` at that scale: where the objects
    come out at the size they were trained at (within ``SETTLE_TOLERANCE``), the image is one like those
    it trained on and gets their diameter. Else it is measured (``measured_diameter``) and ``settled``;
    where the measure finds no size it can confirm (nan), a model that trained on an image keeps its size.
    Why the look: a model fine-tuned at 0.61x on a DSB2018 field of 36-px nuclei, seen at its own scale,
    cut them in pieces and measured the pieces (27 px, within the tolerance of its 22 px), so the field
    was predicted as it is: F1 0.971 -> 0.667 after a round that had improved every nucleus it painted.
    Why it keeps the size: after three rounds at 0.41x on a stained tile of 38-px nuclei, the look found
    them 48 px (touching pairs fused) and the measure nan (pieces at 1x, fused pairs at 0.57x), so the
    fourth round's prediction saw the tile as it is: F1 0.706 -> 0.553. An image the model cannot size
    is likelier one like those the user trained on than one at the size of the bundled model's data."""
    known = remembered(model, chw)
    if known is not None:
        return known
    trained, trained_scale = _last_trained(model)
    if trained is not None and trained_scale not in (None, 1.0):
        found = _look(model, _centre(chw), trained_scale)
        if math.isfinite(found) and 1 / SETTLE_TOLERANCE <= found / trained <= SETTLE_TOLERANCE:
            return float(trained)
    measured = measured_diameter(model, chw)
    if not math.isfinite(measured) and trained is not None:
        return float(trained)
    return settled(model, measured)


def settled(model, estimate: float) -> float:
    """``estimate`` (px), or the image diameter ``model``'s last round trained at (recorded in its
    summary) when the two are within ``SETTLE_TOLERANCE``. Each round's model measures an image a little
    differently, and the scale followed: a DSB2018 field measured 14.6, 15.4 and 14.0 px by three
    successive rounds' models was trained at 1.51x and then predicted at 1.34x, then 1.56x (F1 0.968,
    0.839, 0.968). Settled, the images a model was trained on are predicted, and trained on again, at
    the scale it learned them at, however its estimate wobbles; an image whose objects are really
    another size is still measured as it is."""
    trained, _ = _last_trained(model)
    if trained is None or not math.isfinite(estimate):
        return estimate
    return float(trained) if 1 / SETTLE_TOLERANCE <= estimate / trained <= SETTLE_TOLERANCE else estimate


def remember(model, images, diameter) -> None:
    """Record in ``model``'s summary that it trained on ``images`` (planes, channels first) with their objects
    at ``diameter`` px (None or nan: trained as they are), keyed by ``fingerprint``; the oldest records go
    beyond ``REMEMBERED_IMAGES``."""
    seen = model.summary.setdefault("image_diameters", {})
    known = None if diameter is None or not math.isfinite(diameter) else round(float(diameter), 3)
    for chw in images:
        key = fingerprint(chw)
        seen.pop(key, None)  # re-inserted last: the newest record
        seen[key] = known
    for key in list(seen)[:max(0, len(seen) - REMEMBERED_IMAGES)]:
        del seen[key]


def remembered(model, chw) -> float | None:
    """The diameter (px) ``model`` last trained on ``chw`` with (``remember``): nan where it trained on it as
    it is, None where it never trained on it."""
    seen = (getattr(model, "summary", None) or {}).get("image_diameters") or {}
    key = fingerprint(chw)
    if key not in seen:
        return None
    return float("nan") if seen[key] is None else float(seen[key])


def fingerprint(chw) -> str:
    """A short key of one plane (channels first, any dtype): its size and the exact values of its centre
    crop (``ESTIMATE_SIDE``, the part a diameter is measured on; read already), averaged over channels.
    The same image, as a layer or a file, gives the same key; any other image (another crop, plane or
    field) another."""
    import hashlib

    centre = np.asarray(_centre(chw), np.float64)
    values = centre.reshape(-1, *centre.shape[-2:]).mean(0).astype(np.float32)
    digest = hashlib.sha1(repr(tuple(np.shape(chw)[-2:])).encode())
    digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()[:20]


def _last_trained(model) -> tuple[float | None, float | None]:
    """(image diameter, scale) the last round of ``model`` trained at (``rounds.record``); (None, None)
    when it has not trained or recorded no finite diameter."""
    rounds = (getattr(model, "summary", None) or {}).get("rounds") or []
    diameter = rounds[-1].get("image_diameter") if rounds else None
    if diameter is None or not math.isfinite(diameter):
        return None, None
    return float(diameter), rounds[-1].get("scale")


def measured_diameter(model, chw) -> float:
    """The diameter (px) of the objects in ``chw`` (one plane, channels first), from the model's own
    prediction of its centre crop (``ESTIMATE_SIDE``): at the image's scale first, then, when that is
    off the model's diameter by more than ``RESCALE_TOLERANCE``, once more at the scale it suggests (objects
    twice the trained size come out in pieces, but their foreground, which is measured, is whole), which
    must confirm it: objects that, seen at that scale, are still off the model's size by more than the
    tolerance make the estimate nan (not rescaled).
    A model that learned to split touching objects (whole cells), and any model where the foreground is all
    clusters (confluent tissue), measures the predicted objects instead.
    nan when no object is found."""
    crop = _centre(chw)
    estimate, scale = float("nan"), 1.0
    for _ in range(2):
        found = _look(model, crop, scale)
        if not math.isfinite(found):
            return estimate
        next_scale = scale_for(model.config.diameter, found)
        if scale != 1.0 and not 1 / RESCALE_TOLERANCE <= next_scale / scale <= RESCALE_TOLERANCE:
            # seen at the size it suggested, the objects are still not the model's size: the first
            # prediction was wrong about them (cells cut in pieces, a stain's texture), not about their size
            return float("nan")
        estimate = found
        if next_scale == scale or next_scale == 1.0:
            return estimate
        scale = next_scale
    return estimate


def _centre(chw) -> np.ndarray:
    """The centre crop (``ESTIMATE_SIDE``) of ``chw`` (channels first) a diameter is measured on."""
    h, w = chw.shape[-2:]
    y0, x0 = max(0, (h - ESTIMATE_SIDE) // 2), max(0, (w - ESTIMATE_SIDE) // 2)
    return np.asarray(chw[..., y0:y0 + ESTIMATE_SIDE, x0:x0 + ESTIMATE_SIDE])


def _look(model, crop, scale: float) -> float:
    """The diameter (px of ``crop``) of the objects ``model`` predicts in ``crop`` seen at ``scale``: of
    their foreground, or, for a model that learned to split touching objects (or a foreground all of
    clusters), of its objects; nan when none is found."""
    from ..model.unet import learned_split
    from . import predict

    maps = predict.predict_maps(model, crop, "CYX", scale=scale)
    learned = learned_split(model)
    # a model that learned to split touching objects measures its objects; the others their foreground
    found = float("nan") if learned else diameter_of_foreground(maps.probabilities.argmax(0) > 0)
    if not math.isfinite(found):
        from ...instances import instance_labels

        split = maps.split if learned else None
        labels = instance_labels(maps.probabilities, learned=split, head=model.config.split_head).labels
        found = diameter_of_labels(labels)
    return found
