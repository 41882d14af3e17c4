"""The right start for a first round, chosen by the user's own strokes.

Before a first round, each bundled model predicts the training images, with their objects at its size
(``prediction.size``), and is scored on what the user painted: the balanced accuracy of its classes on
the painted pixels (background and objects each weigh half, however many of each were painted). The
best bundled model is the start when it agrees with the strokes (``AGREEMENT``); else a new network
is, since a generalist that disagrees with the strokes has to be talked out of what it knows, at a
fine-tuning rate too small for that (three rounds from ``nuclei`` on H&E tiles read as grey reached
F1 0.49 where a new network reached 0.75 in 30 s on the colour tiles; issue #44).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

AGREEMENT = 0.85  # balanced accuracy on the strokes a bundled model needs to be the start
MAX_PLANES = 4  # training planes scored


@dataclass
class StartChoice:
    """name: the bundled model to start from, or "" for a new network; scores: each candidate's
    balanced accuracy on the strokes; reason: one line for the status."""

    name: str
    scores: dict = field(default_factory=dict)
    reason: str = ""


def stroke_agreement(model, images, annotations, objects=None) -> float:
    """Balanced accuracy of ``model``'s classes on the painted pixels of ``images`` (channels first)."""
    from ..prediction import pipeline, size

    right = {}
    for image, ann, obj in list(zip(images, annotations, objects or [None] * len(images)))[:MAX_PLANES]:
        ann = np.asarray(ann)
        if obj is not None and np.any(obj):
            ann = np.where(np.asarray(obj) > 0, np.maximum(ann, 2), ann)
        painted = size.diameter_of_labels(obj) if obj is not None and np.any(obj) else float("nan")
        diameter = painted if np.isfinite(painted) else "auto"
        labels = np.asarray(pipeline.predict_image(model, image, "CYX", diameter=diameter).labels)
        for value in np.unique(ann[ann > 0]):
            hit = labels[ann == value] == value - 1
            got = right.setdefault(int(value), [0, 0])
            got[0] += int(hit.sum())
            got[1] += int(hit.size)
    rates = [hit / total for hit, total in right.values() if total]
    return float(np.mean(rates)) if rates else float("nan")


def choose_start(images, annotations, objects=None, candidates=None) -> StartChoice:
    """The start for a first round on ``images`` (channels first) and their annotations: the bundled
    model (``candidates``: names; default all of them that fit the images' channels) that agrees best
    with the strokes if it agrees enough, else a new network ("")."""
    from ..convert import wants_grey
    from ..model import bundled, modelfile

    channels = np.shape(images[0])[0]
    scores = {}
    for name in candidates if candidates is not None else bundled.bundled_names():
        model = modelfile.load_model(name)
        if model.config.in_channels != channels and not wants_grey(channels, model.config.in_channels):
            continue
        top = max(int(np.max(a)) for a in annotations) - 1
        if top > model.config.n_classes:
            continue
        scores[name] = round(stroke_agreement(model, images, annotations, objects), 3)
    scored = {k: v for k, v in scores.items() if np.isfinite(v)}
    if not scored:
        return StartChoice("", scores, "a new network: no bundled model fits these images")
    best = max(scored, key=scored.get)
    listed = ", ".join(f"{k} {v:.2f}" for k, v in sorted(scored.items(), key=lambda kv: -kv[1]))
    if scored[best] >= AGREEMENT:
        return StartChoice(best, scores, f"started from {best}: it agrees with your strokes ({listed})")
    return StartChoice("", scores, f"started a new network: no bundled model agrees with your strokes "
                                   f"({listed}, below {AGREEMENT})")
