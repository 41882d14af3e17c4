"""The one rule for axes and channels: layouts of n-D images, stacks of planes, with or without channels.

An image's layout is a string of axis letters, one per dimension, from ``TZCYX``
in any order, e.g. ``"YX"``, ``"YXC"`` (RGB), ``"CYX"``, ``"ZYX"``, ``"TYX"``,
``"TZYX"``, ``"TZCYX"`` (ImageJ hyperstacks). ``Y`` and ``X`` are the plane the
2D U-Net sees; ``T`` and ``Z`` index the planes of a stack; ``C`` holds channels.
Annotations and predicted labels have the image's layout without ``C``.

A plane is returned in the model's channel layout (``"none"`` YX, ``"last"`` YXC,
``"first"`` CYX; see ``model.UNetConfig``) as a view: numpy stays a view and dask
or zarr stay lazy, so a plane of a huge stack is read only where it is used.

When an image's layout is not given, ``guess_axes`` decides it, the same way for ``train.fit``,
the CLI and the widget (see its docstring). 3D models see volumes instead of planes: pass ``spatial="ZYX"`` (``spatial_of(config)``)
and the functions below walk the volumes (one per T) in the same way.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import UserInputError
from . import convert

AXIS_LETTERS = "TZCYX"
STACK_AXES = "TZ"
MAX_TRAILING_CHANNELS = 8  # a trailing axis this short (after a longer one) holds channels


def check_axes(axes: str, shape) -> str:
    """Validate ``axes`` for an array of ``shape``; returns it upper-cased."""
    axes = axes.upper()
    bad = sorted(set(axes) - set(AXIS_LETTERS))
    if bad or len(set(axes)) != len(axes) or "Y" not in axes or "X" not in axes:
        raise UserInputError(f"axes {axes!r} are not valid; use each of T, Z, C at most once plus Y and X, e.g. ZYX or YXC")
    if len(axes) != len(shape):
        raise UserInputError(f"axes {axes!r} name {len(axes)} dimensions but the image has {len(shape)} "
                             f"(shape {tuple(shape)}); give one letter per dimension")
    return axes


def guess_axes(shape, in_channels: int | None = None, rgb: bool = False) -> str:
    """The one rule for the layout of an image of ``shape`` (used by ``train.fit``, the CLI and the widget).

    - 2D: ``YX``.
    - A trailing axis of at most ``MAX_TRAILING_CHANNELS`` after a longer one (``rgb``: always) holds
      channels: ``YXC``, ``ZYXC``, ``TZYXC``. So (Y, X, 3) is RGB and (Y, X, 2) two channels, whatever
      the model (a grayscale model then refuses it, rather than reading Y planes of X x 2).
    - Leading axes index planes (``ZYX``, ``TZYX``; 5D ``TZCYX``, ImageJ's order), unless the model has
      as many channels (more than 1) as that axis: ``CYX``, ``ZCYX``, ``CZYX``. A leading axis is never
      guessed to be channels without a model: a (3, Y, X) array is a stack of 3 planes, as napari
      shows it. Declare other layouts (``--axes CYX``, the widget's Axes field, ``channel_axis``).
    """
    nd = len(shape)
    if nd < 2 or nd > 5:
        raise UserInputError(f"cannot guess the axes of an image of shape {tuple(shape)}; give them (CLI --axes, "
                             "widget Axes), e.g. TZCYX: at most 5 axes, Y and X last or before C")
    if nd == 2:
        return "YX"
    trailing = rgb or (shape[-1] <= MAX_TRAILING_CHANNELS < shape[-2])
    if trailing:
        return {3: "YXC", 4: "ZYXC", 5: "TZYXC"}[nd]
    model_channels = in_channels is not None and in_channels > 1
    if nd == 3:
        return "CYX" if model_channels and shape[0] == in_channels else "ZYX"
    if nd == 4:
        if model_channels and shape[1] == in_channels:
            return "ZCYX"
        return "CZYX" if model_channels and shape[0] == in_channels else "TZYX"
    return "TZCYX"


def input_layout(shape, spatial: str = "YX", in_channels: int | None = None) -> str:
    """The channel layout ("none", "last", "first") of one network input of ``shape`` (a plane, or a
    volume with ``spatial="ZYX"``) by ``guess_axes``; refuses a stack, naming how to declare channels."""
    axes = guess_axes(shape, in_channels)
    if spatial == "ZYX" and "Z" not in axes:
        raise UserInputError(f"an image of shape {tuple(shape)} reads as {axes}, not a volume; give (Z, Y, X) "
                             "volumes, with channels first or last, to a 3D model")
    extra = stack_axes(axes, spatial)
    if extra:
        raise UserInputError(
            f"an image of shape {tuple(shape)} reads as {axes}: a stack of {shape[0]} planes, not one "
            f"{'plane' if spatial == 'YX' else 'volume'}; if its first axis holds channels, declare it "
            "(channel_axis='first'; CLI --axes CYX; widget Axes CYX), else give one plane at a time")
    return layout_of(axes)


def check_channels(n_channels: int, config) -> None:
    """Refuse an image whose channel count is not the model's (``config``: a UNetConfig)."""
    if n_channels != config.in_channels:
        raise UserInputError(
            f"the image has {n_channels} channel(s) but the model was trained on {config.in_channels}; "
            "use an image like the training images (check its axes) or train a new model")


def layout_of(axes: str) -> str:
    """The model channel layout that matches ``axes``: "none", "last" or "first"."""
    if "C" not in axes:
        return "none"
    return "last" if axes.index("C") > axes.index("X") else "first"


def is_single_plane(axes: str, spatial: str = "YX") -> bool:
    return not stack_axes(axes, spatial)


def spatial_of(config) -> str:
    """The axes one network input covers: "YX" for 2D models, "ZYX" for 3D models."""
    return "ZYX" if getattr(config, "spatial_dims", 2) == 3 else "YX"


def stack_axes(axes: str, spatial: str = "YX") -> str:
    """The axes that index separate network inputs: T and Z for planes, T for volumes."""
    if spatial == "ZYX" and "Z" not in axes:
        raise UserInputError(f"a 3D model needs a Z axis but the image's axes are {axes!r}; "
                             "give a volume (e.g. --axes ZYX) or use a 2D model")
    return "".join(a for a in axes if a in STACK_AXES and a not in spatial)


def labels_axes(axes: str) -> str:
    return axes.replace("C", "")


def labels_shape(shape, axes: str) -> tuple[int, ...]:
    return tuple(n for n, a in zip(shape, axes) if a != "C")


def plane_indices(shape, axes: str, spatial: str = "YX"):
    """Every plane (volume) as a tuple of indices along the stack axes (in ``axes`` order)."""
    stack = stack_axes(axes, spatial)
    sizes = [n for n, a in zip(shape, axes) if a in stack]
    return list(itertools.product(*(range(n) for n in sizes)))


def plane(image, axes: str, index: tuple[int, ...], layout: str, spatial: str = "YX"):
    """One plane of ``image`` in the channel ``layout``: (Y, X), (Y, X, C) or (C, Y, X);
    with ``spatial="ZYX"`` one volume: (Z, Y, X), (Z, Y, X, C) or (C, Z, Y, X)."""
    image = convert.as_array(image)
    stack = stack_axes(axes, spatial)
    it = iter(index)
    key = tuple(next(it) if a in stack else slice(None) for a in axes)
    kept = "".join(a for a in axes if a not in stack)
    view = image[key]
    if layout == "none" and "C" in kept:
        if view.shape[kept.index("C")] != 1:
            raise UserInputError(f"the image has {view.shape[kept.index('C')]} channels but the model expects "
                                 "grayscale; pick one channel or train a model on this kind of image")
        view = view[tuple(0 if a == "C" else slice(None) for a in kept)]
        kept = kept.replace("C", "")
    if layout != "none" and "C" not in kept:
        raise UserInputError(f"the model expects a channel axis but the image's axes are {axes!r}; add C to --axes")
    target = {"none": spatial, "last": spatial + "C", "first": "C" + spatial}[layout]
    order = [kept.index(a) for a in target]
    return view if order == sorted(order) else view.transpose(order)


def label_plane_key(axes: str, index: tuple[int, ...], spatial: str = "YX") -> tuple:
    """Index into a labels array (layout ``labels_axes(axes)``) selecting one (Y, X) plane
    (one (Z, Y, X) volume with ``spatial="ZYX"``)."""
    stack = stack_axes(axes, spatial)
    it = iter(index)
    key = tuple(next(it) if a in stack else slice(None) for a in labels_axes(axes))
    lab_axes = "".join(a for a in labels_axes(axes) if a not in stack)
    if lab_axes != spatial:
        raise UserInputError(f"axes {axes!r} do not end in {spatial}; use a layout with the axes in that order")
    return key


def annotated_planes(image, annotations, axes: str, layout: str, spatial: str = "YX", objects=None):
    """Training pairs from a stack: (planes, annotation planes, object planes) where anything is painted.

    image: array in ``axes``; annotations (and objects, painted whole objects, or None): integer
    arrays of ``labels_shape(image.shape, axes)``. Returns three lists: planes in ``layout``
    (numpy), their (Y, X) annotation planes and object planes (None without objects); with
    ``spatial="ZYX"`` the annotated volumes and their (Z, Y, X) annotations.
    """
    expected = labels_shape(np.shape(image), axes)
    for what, painted in (("annotations", annotations), ("object ids", objects)):
        if painted is not None and tuple(np.shape(painted)) != expected:
            raise UserInputError(f"{what} have shape {tuple(np.shape(painted))} but the image needs {expected} "
                                 f"(axes {labels_axes(axes)}); paint on a Labels layer of the image's shape")
    planes, anns, objs = [], [], []
    for index in plane_indices(np.shape(image), axes, spatial):
        key = label_plane_key(axes, index, spatial)
        ann = np.asarray(annotations[key])
        obj = None if objects is None else np.asarray(objects[key])
        if ann.any() or (obj is not None and obj.any()):
            planes.append(np.asarray(plane(image, axes, index, layout, spatial)))
            anns.append(ann)
            objs.append(obj)
    return planes, anns, objs
