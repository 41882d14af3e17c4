"""The training set: which planes (volumes) of the user's images to train on, with their annotations
and painted objects, checked; the same for the CLI and the widget."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import UserInputError
from .. import convention
from .. import layout as ax
from ..convention import BACKGROUND, UNLABELED
from .painted import check_objects, merge_into_annotations


@dataclass
class TrainingSet:
    """Network inputs and their annotations, ready for ``train.fit``.

    images: planes (volumes for ``spatial="ZYX"``), channels first (``axes``: "CYX", "CZYX"), numpy.
    annotations: int16 arrays of the planes' (Y, X) (or (Z, Y, X)) shape, checked.
    objects: per plane, its painted whole objects (int32, checked) or None; None when no source has any.
    annotated: per source image, (planes with annotations, planes) (1, 1 for a single plane).
    """

    images: list = field(default_factory=list)
    annotations: list = field(default_factory=list)
    objects: list | None = None
    layout: str = "none"  # where the channels of the user's images sat ("none", "last", "first")
    annotated: list = field(default_factory=list)
    axes: str = "CYX"


def training_set(sources, spatial: str = "YX", n_classes: int | None = None) -> TrainingSet:
    """The training pairs of ``sources``: [(image, annotations, axes)] or [(image, annotations, axes,
    objects)], axes as ``layout.check_axes``, objects (painted whole objects, 0 = none) or None.

    A single plane (volume) is used whole; a stack contributes the planes (volumes) with
    annotations or objects. n_classes: the class count of the model that will be fine-tuned
    (None: new). Raises UserInputError when layouts differ, nothing is annotated, the classes do
    not fit, or objects are bad (another shape, negative or fractional ids, over background).
    """
    out, layouts, objs = TrainingSet(), set(), []
    for image, painted, axes, *rest in sources:
        objects = rest[0] if rest else None
        axes = ax.check_axes(axes, np.shape(image))
        layout = ax.layout_of(axes)
        layouts.add(layout)
        if ax.is_single_plane(axes, spatial):
            plane = np.asarray(ax.plane(image, axes, (), spatial))
            shape = plane.shape[1:]
            out.images.append(plane)
            out.annotations.append(convention.check_annotations(painted, shape))
            objs.append(None if objects is None else check_objects(objects, shape))
            out.annotated.append((1, 1))
        else:
            planes, anns, found = ax.annotated_planes(image, painted, axes, spatial, objects)
            out.images += planes
            out.annotations += [convention.check_annotations(a, a.shape) for a in anns]
            objs += [None if o is None else check_objects(o, o.shape) for o in found]
            out.annotated.append((len(planes), len(ax.plane_indices(np.shape(image), axes, spatial))))
    if len(layouts) > 1:
        raise UserInputError("the training images have different channel layouts; give images of one kind")
    if not out.images:
        raise UserInputError("no annotations found on any plane; paint background (1) and objects (2) first")
    merged = [a if o is None else merge_into_annotations(a, o) for a, o in zip(out.annotations, objs)]
    check_training_set(merged, n_classes)
    out.objects = objs if any(o is not None for o in objs) else None
    out.layout = layouts.pop()
    out.axes = "C" + spatial
    return out


def check_training_set(annotations: list[np.ndarray], n_classes: int | None) -> int:
    """Check that the annotations can train a model; return the number of object classes.

    n_classes: the model's class count when fine-tuning or continuing a model (None: a new model, its
    classes taken from the data). A new model needs background and objects painted; a model that
    continues takes corrections alone (objects without background, or only erasures), since what it
    already predicts stands in for the rest (``losses.prior_loss`` keeps it where nothing is painted).
    """
    present = set()
    for ann in annotations:
        present.update(np.unique(ann).tolist())
    present.discard(UNLABELED)
    if not present:
        raise UserInputError(
            "no annotations found; paint background (label 1) and objects (label 2) first"
        )
    if n_classes is None and BACKGROUND not in present:
        raise UserInputError("only object labels were painted; also paint some background with label 1")
    if n_classes is None and len(present) < 2:
        raise UserInputError(
            "only background (label 1) was painted; also paint some objects with label 2"
        )
    top = max(present) - 1
    if n_classes is not None and top > n_classes:
        raise UserInputError(
            f"annotations use label {top + 1} but the model has {n_classes} object class(es) "
            f"(labels 2..{n_classes + 1}); remove that label or train a new model"
        )
    return n_classes if n_classes is not None else top


def network_inputs(images, axes: str | None, declared, spatial: str = "YX") -> tuple[list, str]:
    """User images as network inputs, channels first ((C, Y, X); (C, Z, Y, X) for ``spatial="ZYX"``),
    and where their channels sat (the ``UNetConfig.channel_axis`` a new model records: as declared,
    else "none" for one channel, else where ``axes`` or the one rule found them).

    axes: the images' layout (e.g. "YXC", "CYX"), or None: read by the one rule
    (``layout.input_axes``) with the channel layout ``declared`` (a UNetConfig or None) names.
    """
    given = getattr(declared, "channel_axis", "none")
    in_channels = getattr(declared, "in_channels", None)
    chw, found = [], []
    for image in images:
        image_axes = ax.check_axes(axes, np.shape(image)) if axes else \
            ax.input_axes(np.shape(image), spatial, in_channels, given)
        if ax.stack_axes(image_axes, spatial):
            raise UserInputError(f"an image with axes {image_axes} is a stack, not one "
                                 f"{'plane' if spatial == 'YX' else 'volume'}; give one at a time")
        chw.append(ax.plane(image, image_axes, (), spatial))
        found.append(image_axes)
    if len({c.shape[0] for c in chw}) > 1:
        raise UserInputError("the training images have different channel counts; give images of one kind")
    if given != "none":  # declared: the caller knows where the user's channels sat (the CLI, the widget)
        return chw, given
    return chw, "none" if not chw or chw[0].shape[0] == 1 else ax.layout_of(found[0])


def training_scale(model, images, objects, diameter="auto", new: bool = False) -> tuple[float, float | None]:
    """(scale, diameter): how much to rescale the training ``images`` (channels first) so that their objects
    come at ``model``'s diameter, and the objects' diameter in them (px; None: not known).

    diameter: a number of pixels, "auto", None (never rescaled) or a ``size.Estimated`` (the first image's
    "auto" estimate, measured already by this model). "auto" follows Predict's rule, so that
    a model is trained at the scale it will then predict the same image at: a model that knows its size
    measures the first image by its own prediction (``size.estimate_diameter``). The painted objects do
    not: they are the user's corrections, not a sample of the image's sizes (the five worst-predicted
    nuclei of a DSB2018 field were its thinnest, 4 px against a median of 9: trained at 4x and predicted
    at 1x, the field fell round after round, F1 0.33 -> 0.23; trained as predicted, 0.33 -> 0.42).
    A ``new`` model is never rescaled for: it records the diameter of what it learns from (the painted
    objects, or the number given) as its own.
    """
    from ..prediction import size

    painted = [o for o in (objects or []) if o is not None and o.any()]
    if isinstance(diameter, size.Estimated) or diameter == "auto":
        # an Estimated is the first image measured already by this model: "auto" without measuring again
        measured, diameter = (diameter if isinstance(diameter, size.Estimated) else None), None
        if not new and model.config.diameter is not None and model.config.spatial_dims == 2:
            estimate = measured if measured is not None else size.estimate_diameter(model, images[0])
            if not np.isfinite(estimate):
                return 1.0, None
            return size.scale_for_estimate(model.config.diameter, estimate), float(estimate)
        found = [d for d in (size.diameter_of_labels(o) for o in painted) if np.isfinite(d)]
        if found:
            diameter = float(np.median(found))
    elif diameter is not None and not (isinstance(diameter, (int, float)) and np.isfinite(diameter) and diameter > 0):
        raise UserInputError(f"diameter {diameter!r}: give a number of pixels or auto")
    if new:
        if model.config.diameter is None and diameter is not None and model.config.spatial_dims == 2:
            model.config.diameter = float(diameter)
        return 1.0, diameter
    if model.config.spatial_dims != 2:
        return 1.0, None
    return size.scale_for(model.config.diameter, diameter), diameter


def rescale(prepared: list, annotations: list, objects: list, scale: float) -> tuple[list, list, list]:
    """Training planes (float32, channels first), their annotations and painted objects at ``scale``
    (``resample``: pixels bilinearly, labels by their nearest pixel)."""
    from .. import resample

    if scale == 1.0:
        return prepared, annotations, objects
    out = ([], [], [])
    for image, ann, obj in zip(prepared, annotations, objects):
        shape = resample.scaled_shape(image.shape[1:], scale)
        out[0].append(resample.resize_image(image, shape))
        out[1].append(resample.resize_labels(ann, shape))
        out[2].append(None if obj is None else resample.resize_labels(obj, shape))
    return out
