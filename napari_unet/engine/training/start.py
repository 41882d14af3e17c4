"""The right start for a first round, chosen by the user's own strokes.

Before a first round, each bundled model predicts the painted part of the training images, with their
objects at its size (``prediction.size``), and is scored on what the user painted: the balanced
accuracy of its classes on the painted pixels (background and objects each weigh half, however many
of each were painted). The best bundled model is the start when it agrees with the strokes
(``AGREEMENT``); else a new network is, since a generalist that disagrees with the strokes has to be
talked out of what it knows, at a fine-tuning rate too small for that (three rounds from ``nuclei`` on
H&E tiles read as grey reached F1 0.49 where a new network reached 0.75 in 30 s on the colour tiles;
issue #44).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AGREEMENT = 0.85  # balanced accuracy on the strokes a bundled model needs to be the start
MAX_PLANES = 4  # training planes scored
CONTEXT = 96  # px, at the network's scale, predicted around the strokes (more than its tiles' overlap, 64)


@dataclass
class StartChoice:
    """name: the bundled model to start from, or "" for a new network; scores: each candidate's
    balanced accuracy on the strokes; reason: one line for the status; model: the chosen model, loaded
    (None for a new network); diameter: the first image's objects as that model estimated them
    (``size.Estimated``, for ``fit``'s diameter, so the round does not measure them again), or None when
    it was not measured (the first image unpainted, or a model that does not know its size)."""

    name: str
    scores: dict = field(default_factory=dict)
    reason: str = ""
    model: object = None
    diameter: float | None = None


def stroke_agreement(model, images, annotations, objects=None) -> float:
    """Balanced accuracy of ``model``'s classes on the painted pixels of ``images`` (channels first).

    Only the painted part of each image is predicted (``painted_window``), with the whole image's
    conversion and object size: a user who painted one corner of a 2048^2 field waits for that corner
    twice (two candidates), not for the field."""
    return _agreement(model, images, annotations, objects)[0]


def _agreement(model, images, annotations, objects=None) -> tuple[float, float | None]:
    """(``stroke_agreement``, the first image's diameter as ``model`` estimated it: ``size.Estimated``, or
    None when not measured)."""
    from ...instances import semantic_labels
    from .. import convert
    from ..prediction import pipeline, size, stacks

    right, first_diameter = {}, None
    planes = list(zip(images, annotations, objects or [None] * len(images)))[:MAX_PLANES]
    for k, (image, ann, obj) in enumerate(planes):
        ann = np.asarray(ann)
        if obj is not None and np.any(obj):
            ann = np.where(np.asarray(obj) > 0, np.maximum(ann, 2), ann)
        if not np.any(ann):
            continue
        # at the scale the round would train it (``dataset.training_scale``: the model's own estimate)
        scale, diameter = pipeline.resolve_scale(model, image, stacks.layout_of_image(image, "CYX", model), "auto")
        if k == 0 and model.config.diameter is not None and model.config.spatial_dims == 2:
            first_diameter = size.Estimated(diameter if diameter is not None else float("nan"))
        window = painted_window(ann, CONTEXT / scale)
        maps = pipeline.preview_maps(model, image, window, conversion=convert.conversion_for(image, model.config),
                                     scale=scale)
        labels = semantic_labels(maps.probabilities)
        y0, y1, x0, x1 = window
        tally_strokes(right, labels, ann[y0:y1, x0:x1])
    return balanced_accuracy(right), first_diameter


def tally_strokes(right: dict, labels: np.ndarray, annotations: np.ndarray) -> None:
    """Add to ``right`` ({painted label: [pixels the class labels got right, pixels painted]}) the painted
    pixels of ``annotations`` (label 1 background, k class k - 1) against class ``labels`` of the same shape."""
    for value in np.unique(annotations[annotations > 0]):
        hit = labels[annotations == value] == value - 1
        got = right.setdefault(int(value), [0, 0])
        got[0] += int(hit.sum())
        got[1] += int(hit.size)


def balanced_accuracy(right: dict) -> float:
    """The mean over the painted labels of ``tally_strokes``' share right; nan when nothing was painted."""
    rates = [hit / total for hit, total in right.values() if total]
    return float(np.mean(rates)) if rates else float("nan")


def painted_window(annotations: np.ndarray, margin: float) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the bounding box of the painted (non-zero) pixels of ``annotations`` (Y, X), grown
    by ``margin`` px on each side (the context the network sees around them), within the image."""
    ys, xs = np.nonzero(annotations)
    m = int(np.ceil(margin))
    h, w = annotations.shape
    return (max(int(ys.min()) - m, 0), min(int(ys.max()) + m + 1, h),
            max(int(xs.min()) - m, 0), min(int(xs.max()) + m + 1, w))


STAINED_MODEL = "nuclei-stained"  # the bundled model for dark objects on a bright background


def start_for_image(image_chw) -> tuple[str, str]:
    """(name, reason): the bundled model to predict ``image_chw`` (a plane, channels first) with before any
    stroke: ``STAINED_MODEL`` for an image with a bright background (stained or brightfield, dark objects
    on light: ``convert.has_bright_background``) where it is bundled, else ``bundled.DEFAULT_MODEL``."""
    from ..convert import has_bright_background
    from ..model import bundled

    if STAINED_MODEL in bundled.bundled_names() and has_bright_background(image_chw):
        return STAINED_MODEL, "a bright background (stained or brightfield)"
    return bundled.DEFAULT_MODEL, "no bright background (fluorescence-like)"


def start_for_whole_image(image, axes: str | None = None) -> tuple[str, str]:
    """``start_for_image`` on the first plane of ``image`` (any layout: ``axes``, or the one rule's guess
    with no model; numpy or lazy: only that plane is read)."""
    from .. import layout as ax

    found = ax.resolve(np.shape(image), axes, None)
    return start_for_image(np.asarray(ax.plane(image, found.axes, found.planes[0].index)))


def choose_start(images, annotations, objects=None, candidates=None) -> StartChoice:
    """The start for a first round on ``images`` (channels first) and their annotations: the bundled
    model (``candidates``: names, in order of preference; default all of them that fit the images'
    channels, ``bundled.DEFAULT_MODEL`` first) that agrees best with the strokes if it agrees enough,
    else a new network (""). A tie goes to the earlier candidate, so one that agrees fully (1.000) ends
    the search."""
    from ..layout import fits_channels
    from ..model import bundled, modelfile

    channels = np.shape(images[0])[0]
    scores, models, diameters = {}, {}, {}
    if candidates is None:  # the default model first: it wins a tie, and one in full agreement ends the search
        candidates = sorted(bundled.bundled_names(), key=lambda name: name != bundled.DEFAULT_MODEL)
    for name in candidates:
        model = modelfile.load_model(name)
        if not fits_channels(channels, model.config.in_channels):
            continue
        top = max(int(np.max(a)) for a in annotations) - 1
        if top > model.config.n_classes:
            continue
        score, diameters[name] = _agreement(model, images, annotations, objects)
        scores[name], models[name] = round(score, 3), model
        if scores[name] == 1.0:  # no later candidate can score higher (a tie goes to the first)
            break
    scored = {k: v for k, v in scores.items() if np.isfinite(v)}
    if not scored:
        return StartChoice("", scores, "a new network: no bundled model fits these images")
    best = max(scored, key=scored.get)
    listed = ", ".join(f"{k} {v:.2f}" for k, v in sorted(scored.items(), key=lambda kv: -kv[1]))
    if scored[best] >= AGREEMENT:
        return StartChoice(best, scores, f"started from {best}: it agrees with your strokes ({listed})",
                           models[best], diameters[best])
    return StartChoice("", scores, f"started a new network: no bundled model agrees with your strokes "
                                   f"({listed}, below {AGREEMENT})")
