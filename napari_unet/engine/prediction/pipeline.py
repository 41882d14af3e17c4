"""What the CLI and the widget share: how an image
becomes labels (semantic or instances; one plane, a stack, or a zarr store), so that a behaviour
fixed here is fixed for both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import UserInputError
from .. import convert
from .. import layout as ax
from ..model.unet import learned_split


def preview_pixels(image, axes: str, plane: tuple, spatial: str = "YX", half_depth: int = 4):
    """What the trainer predicts to preview ``plane`` (indices along T/Z) of ``image``.

    Returns (pixels, k), channels first: for 2D models the plane (C, Y, X) and k None; for 3D
    models (``spatial="ZYX"``) a slab of up to ``2 * half_depth + 1`` planes around it
    (C, Z, Y, X) and k, the plane's index in the slab.
    """
    if spatial == "YX":
        return np.asarray(ax.plane(image, axes, plane)), None
    stack = [a for a in axes if a in ax.STACK_AXES]
    z = plane[stack.index("Z")]
    volume_index = tuple(i for i, a in zip(plane, stack) if a != "Z")
    volume = ax.plane(image, axes, volume_index, spatial)
    z0, z1 = max(z - half_depth, 0), min(z + half_depth + 1, np.shape(volume)[1])
    return np.asarray(volume[:, z0:z1]), z - z0


def preview_maps(model, chw, window=None, **kwargs):
    """The live preview's prediction (``predict.PredictionDone``) of ``chw`` (a plane or slab, channels
    first), restricted to ``window`` (y0, y1, x0, x1) of its Y and X axes (None: all of it): the one
    place the preview is cropped, for ``train.fit`` and the trainer process alike (and the checked
    regions' score). kwargs: as ``predict.iter_predict`` (e.g. ``conversion``)."""
    from . import predict

    if window is not None:
        y0, y1, x0, x1 = window
        chw = chw[..., y0:y1, x0:x1]
    for event in predict.iter_predict(model, chw, **kwargs):
        if isinstance(event, predict.PredictionDone):
            return event
    raise RuntimeError("prediction ended without a result")


@dataclass
class Progress:
    """``fraction`` (0..1) of an image's prediction is done; ``plane``: the plane just finished
    (indices along the stack axes), None between planes' tiles."""

    fraction: float
    plane: tuple | None = None
    classes: np.ndarray | None = None  # with instances, the classes of ``plane``'s objects


@dataclass
class Predicted:
    """labels: ids (instances) or classes (semantic), the image's shape without channels (numpy, or
    the ``out`` array given); probabilities: (n_outputs, Y, X) float32 for a single plane predicted
    whole, else None; classes: with instances of a single plane, the class of each id 1..N;
    regions: with ``suggest``, the regions to check ranked over all planes (``uncertainty.Region``)."""

    labels: object
    probabilities: np.ndarray | None = None
    classes: np.ndarray | None = None
    regions: list | None = None
    diameter: float | None = None  # the objects' diameter (px) the image was seen with (None: not rescaled)
    scale: float = 1.0  # the image was seen by the network at this scale (its objects at the model's size)
    notes: list = field(default_factory=list)  # what was done beyond the usual, one line each (colour to grey...)


def resolve_scale(model, image, found, diameter="auto") -> tuple[float, float | None]:
    """(scale, diameter): how much to rescale ``image`` (layout ``found``) for the model, and the objects'
    diameter in it. diameter: "auto" (measured on the middle plane, ``size.estimate_diameter``, when the
    model knows its own diameter), a number of pixels, or None (never rescaled). 2D models only."""
    from . import size

    if diameter is None or model.config.diameter is None or model.config.spatial_dims != 2:
        return 1.0, None
    if isinstance(diameter, str):
        if diameter != "auto":
            raise UserInputError(f"diameter {diameter!r}: give a number of pixels or auto")
        middle = found.planes[len(found.planes) // 2]
        diameter = size.estimate_diameter(model, ax.plane(image, found.axes, middle.index, found.spatial))
        if not np.isfinite(diameter):
            return 1.0, None
        return size.scale_for_estimate(model.config.diameter, diameter), float(diameter)
    return size.scale_for(model.config.diameter, diameter), float(diameter)


def labels_from_probabilities(probabilities: np.ndarray, instances: bool, min_size: int = 30, split=None,
                              head: str = "distance"):
    """(labels, classes): semantic labels and None, or instance ids and the class of each id 1..N.

    split: the learned split output (H, W) when the model has learned one (``unet.learned_split``):
    touching objects are split where it says; None: by the distance rule."""
    from ...instances import instance_labels, semantic_labels

    if not instances:
        return semantic_labels(probabilities), None
    found = instance_labels(probabilities, min_size=min_size, learned=split, head=head)
    return found.labels, found.classes


def iter_predict_image(model, image, axes=None, out=None, *, instances: bool = False,
                       probabilities: bool = False, min_size: int = 30, tile_size: int = 512, suggest: int = 0,
                       diameter="auto"):
    """Predict ``image``; yield Progress events, then one Predicted.

    axes: the image's layout, a string (None: the one rule, with the model's channels) or an
    ``layout.ImageLayout`` read already (``layout.resolve``), as the CLI and the widget pass it.

    probabilities: keep the class probabilities of a single in-memory plane (for display or
    ``--probabilities``): it is then predicted whole. Anything else (stacks, volumes, zarr or
    dask images) is predicted plane by plane and block by block into ``out`` (an array of the
    labels' shape, e.g. a zarr store; a new numpy array when None), so memory stays bounded.
    suggest: with N > 0, also the N regions to check (``uncertainty``), from the same prediction.
    diameter: the objects' diameter in pixels, "auto" or None (``resolve_scale``): the image is seen
    with its objects at the size the model learned, and the labels come at the image's size.
    """
    from . import predict, stacks

    found = stacks.layout_of_image(image, axes, model)
    if probabilities and not (found.single and model.config.spatial_dims == 2 and out is None):
        raise UserInputError(f"probabilities are kept for single 2D images in memory, this one has axes {found.axes}; "
                             "leave them out for stacks, volumes and zarr outputs")
    scale, diameter = resolve_scale(model, image, found, diameter)
    notes = [] if scale == 1.0 else [f"objects of {diameter:.0f} px: seen at {scale:.2f}x, the size the model "
                                     f"learned ({model.config.diameter:.0f} px)"]
    if probabilities:
        plane = np.asarray(ax.plane(image, found.axes, ()))
        conversion = convert.conversion_for(plane, model.config)
        notes += [conversion.notice] if conversion.notice else []
        done = None
        for event in predict.iter_predict(model, plane, tile_size=tile_size, conversion=conversion, scale=scale):
            if isinstance(event, predict.TileProgress):
                yield Progress(event.done / max(event.total, 1))
            elif isinstance(event, predict.PredictionDone):
                done = event
        split = done.split if learned_split(model) else None
        labels, classes = labels_from_probabilities(done.probabilities, instances, min_size, split,
                                                    model.config.split_head)
        regions = None
        if suggest:
            from .uncertainty import region_side, suggest_regions, uncertainty_map

            regions = suggest_regions(uncertainty_map(done.probabilities), suggest, region_side(labels, instances))
        yield Predicted(labels, done.probabilities, classes, regions, diameter, scale, notes)
        return
    n_planes = max(len(found.planes), 1)
    done, classes, regions = 0, None, []
    for event in stacks.iter_predict_stack(model, image, found, out, instances=instances, min_size=min_size,
                                           tile_size=tile_size, suggest=suggest, scale=scale):
        if isinstance(event, stacks.PlaneDone):
            notice = event.conversion.notice if event.conversion is not None else None
            if notice and notice not in notes:
                notes.append(notice)
            done = event.done
            regions += event.regions or []
            classes = event.classes if found.single else None
            yield Progress(done / n_planes, event.index, event.classes)
        elif isinstance(event, predict.TileProgress):
            yield Progress((done + event.done / max(event.total, 1)) / n_planes)
        elif isinstance(event, predict.LabelsDone):
            out = event.labels
    if suggest:
        from .uncertainty import rank_regions

        regions = rank_regions(regions, suggest)
    yield Predicted(out, None, classes, regions if suggest else None, diameter, scale, notes)


def predict_image(model, image, axes=None, out=None, **kwargs) -> Predicted:
    """``iter_predict_image`` run to the end (scripts, tests)."""
    result = None
    for event in iter_predict_image(model, image, axes, out, **kwargs):
        if isinstance(event, Predicted):
            result = event
    return result
