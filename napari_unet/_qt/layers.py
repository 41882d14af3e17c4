"""Layer access: pixels, axes, shapes and geometry of napari layers, and what is on screen.

Layers are duck-typed (``data``, ``rgb``, ``multiscale``, ``name``, ``scale``), so napari and Qt
are not imported here; the arrays go to the engine.
"""

from __future__ import annotations

import numpy as np

from ..engine import layout as ax


def image_array(layer):
    """Full-resolution pixels of an Image layer: numpy as is, dask/zarr kept lazy."""
    d = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return ax.as_array(d)


def layer_axes(layer, in_channels: int | None = None) -> str:
    """A layer's axes, e.g. YX, ZYX, TZYX, YXC, by the one rule (``layout.guess_axes``): RGB layers
    end in C; leading axes are Z, then T, unless the model (``in_channels``) has that many channels.
    Users can type other layouts (e.g. CYX) in the widget's Axes field."""
    from ..engine.layout import guess_axes

    shape = np.shape(layer.data[0] if getattr(layer, "multiscale", False) else layer.data)
    return guess_axes(shape, in_channels, rgb=bool(getattr(layer, "rgb", False)))


def channel_axis(layer) -> str:
    from ..engine.layout import layout_of

    return layout_of(layer_axes(layer))


def spatial_shape(layer) -> tuple[int, int]:
    """(Y, X) of a layer."""
    return labels_shape(layer)[-2:]


def labels_shape(layer, axes: str | None = None) -> tuple[int, ...]:
    """Shape of a Labels layer that annotates ``layer``: its shape without channels."""
    from ..engine.layout import check_axes
    from ..engine.layout import labels_shape as shape_without_c

    arr = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    axes = check_axes(axes or layer_axes(layer), np.shape(arr))
    return shape_without_c(np.shape(arr), axes)


def plane_on_screen(layer, axes: str, point) -> tuple[int, ...]:
    """Indices along the stack axes (T, Z) of ``layer`` at the viewer's ``dims.point`` (world)."""
    from ..engine.layout import STACK_AXES, check_axes

    arr = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    axes = check_axes(axes, np.shape(arr))
    try:
        coords = np.asarray(layer.world_to_data(point), float)
    except Exception:  # noqa: BLE001 - no transform: the first plane
        coords = np.zeros(len(axes))
    coords = coords[-len(axes):] if len(coords) >= len(axes) else np.zeros(len(axes))
    shape = np.shape(arr)
    return tuple(int(np.clip(round(c), 0, n - 1)) for c, n, a in zip(coords, shape, axes) if a in STACK_AXES)


def compact_ids(labels: np.ndarray) -> np.ndarray:
    """``labels`` as uint16 if it is a wider integer array whose ids all fit (0..65535), else unchanged.

    For display: napari draws uint8/uint16 Labels as they are, but converts wider ones over the
    whole plane on every change of the data (a 2048^2 preview, here: 50-85 ms of the viewer's
    GUI thread as uint32 against 15-24 ms as uint16; benchmarks/preview_cost.py).
    """
    if labels.dtype.kind not in "ui" or labels.dtype.itemsize <= 2 or labels.size == 0:
        return labels
    if labels.min() < 0 or labels.max() > np.iinfo(np.uint16).max:
        return labels
    return labels.astype(np.uint16)


def camera(viewer):
    """The viewer's camera: ``viewer.scene.camera`` from napari 0.9 (``viewer.camera`` is deprecated there)."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None and hasattr(scene, "camera") else viewer.camera


def visible_window(layer, shape_hw, max_side: int):
    """The on-screen part of ``layer`` as (y0, y1, x0, x1), at most ``max_side`` square.

    None when the whole image fits in ``max_side``: live previews predict only this
    window, so they stay cheap however large the image. Uses ``layer.corner_pixels``
    (the data coordinates of the canvas corners); without it, the image centre.
    """
    h, w = shape_hw
    if h <= max_side and w <= max_side:
        return None
    try:
        (y0, x0), (y1, x1) = np.asarray(layer.corner_pixels)[:, -2:]
    except (AttributeError, ValueError, IndexError):
        y0, x0, y1, x1 = 0, 0, h, w
    cy, cx = (y0 + y1) // 2, (x0 + x1) // 2
    sy, sx = min(max(y1 - y0, 64), max_side, h), min(max(x1 - x0, 64), max_side, w)
    ys = int(np.clip(cy - sy // 2, 0, h - sy))
    xs = int(np.clip(cx - sx // 2, 0, w - sx))
    return (ys, ys + int(sy), xs, xs + int(sx))


def on_screen_box(layer, shape_hw) -> tuple[int, int, int, int]:
    """The part of ``layer`` on the canvas, (y0, y1, x0, x1) in data pixels, within the image of ``shape_hw``
    (``layer.corner_pixels``; all of it when the layer cannot tell)."""
    h, w = shape_hw
    try:
        (y0, x0), (y1, x1) = np.asarray(layer.corner_pixels)[:, -2:]
    except (AttributeError, ValueError, IndexError):
        return 0, h, 0, w
    y0, y1 = int(np.clip(y0, 0, h)), int(np.clip(y1 + 1, 0, h))
    x0, x1 = int(np.clip(x0, 0, w)), int(np.clip(x1 + 1, 0, w))
    return (y0, y1, x0, x1) if y1 > y0 and x1 > x0 else (0, h, 0, w)


def voxel_size(layer, axes: str) -> tuple[float, float, float]:
    """(z, y, x) spacing of ``layer`` from its scale (1, 1, 1 without a Z axis)."""
    dims = [a for a in axes if not (a == "C" and getattr(layer, "rgb", False))]
    scale = list(getattr(layer, "scale", [1.0] * len(dims)))[-len(dims):]
    if "Z" not in dims or len(scale) != len(dims):
        return (1.0, 1.0, 1.0)
    return tuple(abs(float(scale[dims.index(a)])) or 1.0 for a in "ZYX")


DERIVED_IMAGES = (" probabilities", " uncertainty")  # Image layers the widget makes: never a training image


def geometry(image_layer, ndim: int) -> dict:
    """scale/translate for a layer of ``ndim`` dimensions that overlays ``image_layer``."""
    return {"scale": tuple(image_layer.scale[-ndim:]), "translate": tuple(image_layer.translate[-ndim:])}


# label 1 (background) a pale translucent wash, readable on dark and bright images and never taken
# for an object; classes in strong colours
ANNOTATION_COLOURS = {0: (0, 0, 0, 0), 1: (0.55, 0.85, 1.0, 0.4), 2: (1.0, 0.55, 0.1, 1.0),
                      3: (0.3, 0.9, 0.3, 1.0), 4: (0.95, 0.3, 0.95, 1.0), 5: (1.0, 0.95, 0.2, 1.0)}


def style_annotations(layer) -> None:
    """The annotation colours on a Labels layer of class annotations (further classes: white)."""
    from napari.utils.colormaps import DirectLabelColormap

    layer.colormap = DirectLabelColormap(color_dict={None: (1.0, 1.0, 1.0, 1.0), **ANNOTATION_COLOURS})


def place_below(viewer, layer, others) -> None:
    """Move ``layer`` just below the lowest of ``others`` (layers in the viewer) in the layer list."""
    indices = [viewer.layers.index(o) for o in others if o in viewer.layers]
    if indices and viewer.layers.index(layer) > min(indices):
        viewer.layers.move(viewer.layers.index(layer), min(indices))


def keep_selection(viewer):
    """Context manager: the active layer stays active (adding a layer makes the new one active)."""
    import contextlib

    @contextlib.contextmanager
    def kept():
        active = viewer.layers.selection.active
        try:
            yield
        finally:
            if active is not None and active in viewer.layers:
                viewer.layers.selection.active = active
    return kept()
