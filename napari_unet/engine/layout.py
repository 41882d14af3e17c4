"""The one rule for axes and channels: layouts of n-D images, stacks of planes, with or without channels.

An image's layout is a string of axis letters, one per dimension, from ``TZCYX``
in any order, e.g. ``"YX"``, ``"YXC"`` (RGB), ``"CYX"``, ``"ZYX"``, ``"TYX"``,
``"TZYX"``, ``"TZCYX"`` (ImageJ hyperstacks). ``Y`` and ``X`` are the plane the
2D U-Net sees; ``T`` and ``Z`` index the planes of a stack; ``C`` holds channels.
Annotations and predicted labels have the image's layout without ``C``.

A plane (a network input) is handed over channels first, ``(C, Y, X)`` (``(C, Z, Y, X)`` for 3D
models; ``C`` is 1 for an image without channels), as a view: numpy stays a view and dask or
zarr stay lazy, so a plane of a huge stack is read only where it is used. ``resolve`` reads an
image's layout once (axes, planes, labels' shape, channels against the model) into an
``ImageLayout`` that prediction then walks without asking again.

When an image's layout is not given, ``guess_axes`` decides it, the same way for ``train.fit``,
the CLI and the widget (see its docstring). 3D models see volumes instead of planes: pass ``spatial="ZYX"`` (``spatial_of(config)``)
and the functions below walk the volumes (one per T) in the same way.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import UserInputError

AXIS_LETTERS = "TZCYX"
STACK_AXES = "TZ"
MAX_TRAILING_CHANNELS = 8  # a trailing axis this short (after a longer one) holds channels


def as_array(image):
    """numpy and dask arrays as they are; zarr arrays as lazy dask arrays; anything else via numpy.

    Lazy arrays are read only where they are sliced, so images larger than memory work.
    """
    if isinstance(image, np.ndarray) or hasattr(image, "dask"):
        return image
    if type(image).__module__.startswith("zarr"):
        import dask.array as da

        return da.from_zarr(image)
    return np.asarray(image)


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


def input_axes(shape, spatial: str = "YX", in_channels: int | None = None, channel_axis: str = "none") -> str:
    """The axes of one network input of ``shape`` (a plane, or a volume with ``spatial="ZYX"``): where
    ``channel_axis`` ("last", "first", as a model records it) puts them, else by ``guess_axes``, e.g.
    "YX", "YXC", "CYX"; refuses a stack, naming how to declare channels."""
    if channel_axis in ("last", "first"):
        if len(shape) == len(spatial) and in_channels == 3:  # grey for a colour model (``convert.wants_rgb``)
            return check_axes(spatial, shape)
        if len(shape) != len(spatial) + 1:
            raise UserInputError(f"the model takes images with {in_channels or 'several'} channels ({channel_axis}), "
                                 f"this one has shape {tuple(shape)}; give an image like its training images "
                                 "or train a new model")
        return check_axes(spatial + "C" if channel_axis == "last" else "C" + spatial, shape)
    axes = guess_axes(shape, in_channels)
    if spatial == "ZYX" and "Z" not in axes:
        raise UserInputError(f"an image of shape {tuple(shape)} reads as {axes}, not a volume; give (Z, Y, X) "
                             "volumes, with channels first or last, to a 3D model")
    extra = stack_axes(axes, spatial)
    if extra:
        raise UserInputError(
            f"an image of shape {tuple(shape)} reads as {axes}: a stack of {shape[0]} planes, not one "
            f"{'plane (what a 2D model takes)' if spatial == 'YX' else 'volume'}; if its first axis holds channels, declare it "
            "(axes CYX: CLI --axes CYX, widget Axes CYX), else give one plane at a time")
    return axes


def fits_channels(n_channels: int, in_channels: int) -> bool:
    """Whether an image of ``n_channels`` can be read by a network of ``in_channels``: the same count, RGB(A)
    for a grey network (its luminance, ``convert.wants_grey``), grey or RGBA for an RGB network (as RGB,
    ``convert.wants_rgb``)."""
    return (n_channels == in_channels or (in_channels == 1 and n_channels in (3, 4))
            or (in_channels == 3 and n_channels in (1, 4)))


def check_channels(n_channels: int, config) -> None:
    """Refuse an image whose channel count is not the model's (``config``: a UNetConfig); an RGB or RGBA
    image (3 or 4 channels) meets a grayscale model as its luminance, a grey or RGBA image an RGB model
    as RGB (``fits_channels``)."""
    if fits_channels(n_channels, config.in_channels):
        return
    if n_channels != config.in_channels and config.in_channels == 1:
        raise UserInputError(f"the image has {n_channels} channels but the model expects grayscale; pick one "
                             "channel (check its axes) or train a model on this kind of image")
    if n_channels != config.in_channels:
        raise UserInputError(
            f"the image has {n_channels} channel(s) but the model was trained on {config.in_channels}; "
            "use an image like the training images (check its axes) or train a new model")


def layout_of(axes: str) -> str:
    """Where the channels of an image of ``axes`` sit: "none", "last" or "first" (what a model file
    records as ``UNetConfig.channel_axis``, so that the one rule reads its images the same way later)."""
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


def plane(image, axes: str, index: tuple[int, ...], spatial: str = "YX"):
    """One plane of ``image`` (layout ``axes``), channels first: (C, Y, X), C = 1 without a C axis;
    with ``spatial="ZYX"`` one volume: (C, Z, Y, X). ``index``: its indices along the stack axes."""
    image = as_array(image)
    stack = stack_axes(axes, spatial)
    it = iter(index)
    key = tuple(next(it) if a in stack else slice(None) for a in axes)
    kept = "".join(a for a in axes if a not in stack)
    view = image[key]
    if "C" not in kept:
        view, kept = view[None], "C" + kept
    order = [kept.index(a) for a in "C" + spatial]
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


def annotated_planes(image, annotations, axes: str, spatial: str = "YX", objects=None):
    """Training pairs from a stack: (planes, annotation planes, object planes) where anything is painted.

    image: array in ``axes``; annotations (and objects, painted whole objects, or None): integer
    arrays of ``labels_shape(image.shape, axes)``. Returns three lists: planes channels first, (C, Y, X)
    (numpy), their (Y, X) annotation planes and object planes (None without objects); with
    ``spatial="ZYX"`` the annotated volumes, (C, Z, Y, X), and their (Z, Y, X) annotations.
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
            planes.append(np.asarray(plane(image, axes, index, spatial)))
            anns.append(ann)
            objs.append(obj)
    return planes, anns, objs


@dataclass(frozen=True)
class PlaneRef:
    """One network input of an image: its indices along the stack axes (``()`` for a single plane)
    and the index into the labels array that selects its labels."""

    index: tuple
    label_key: tuple


@dataclass(frozen=True)
class ImageLayout:
    """An image's layout, read once (``resolve``): its ``axes`` and ``shape``; ``spatial`` ("YX" or
    "ZYX"), the axes of one network input; ``stack``, the axes that index inputs; ``channels``; the
    ``labels_shape`` (the shape without channels); ``planes``, a PlaneRef per network input, in
    order; ``single``: the image is one network input."""

    axes: str
    shape: tuple
    spatial: str
    stack: str
    channels: int
    labels_shape: tuple
    planes: tuple
    single: bool


def resolve(shape, axes: str | None = None, config=None, spatial: str | None = None, rgb: bool = False) -> ImageLayout:
    """The layout of an image of ``shape``: ``axes`` as given (checked), else ``guess_axes`` with the
    model's channel count; ``config`` (a UNetConfig, or None) sets the network input (planes or volumes)
    and refuses an image of other channels; ``spatial`` does without a model. Raises UserInputError."""
    shape = tuple(int(n) for n in shape)
    spatial = spatial_of(config) if config is not None else (spatial or "YX")
    axes = check_axes(axes, shape) if axes else guess_axes(shape, getattr(config, "in_channels", None), rgb)
    stack = stack_axes(axes, spatial)
    channels = shape[axes.index("C")] if "C" in axes else 1
    if config is not None:
        check_channels(channels, config)
    label_axes = labels_axes(axes)
    if "".join(a for a in label_axes if a not in stack) != spatial:
        raise UserInputError(f"axes {axes!r} do not end in {spatial}; use a layout with the axes in that order")
    planes = tuple(PlaneRef(index, label_plane_key(axes, index, spatial))
                   for index in plane_indices(shape, axes, spatial))
    return ImageLayout(axes, shape, spatial, stack, channels, labels_shape(shape, axes), planes, not stack)
