"""Pixels out of napari layers, and the background prediction job. No Qt here.

Layers are duck-typed (``data``, ``rgb``, ``multiscale``, ``name``), so napari is not imported.
"""

from __future__ import annotations

import numpy as np

from . import data
from .errors import UserInputError


def predict_jobs(model, jobs, want_instances, store_folder=None):
    """Background generator: yields progress (float 0..1) and results.

    jobs: [("layer", image layer, axes) | ("file", path, None)]. Results are tuples
    (kind, target, labels, probabilities, classes, done, total). 2D images give
    probabilities (for display) and instance classes; stacks are predicted plane by
    plane; images backed by dask/zarr are written block by block into a zarr store in
    ``store_folder`` and returned lazily (semantic labels), never loaded whole.
    """
    from . import axes as ax
    from . import instances, io, predict

    for i, (kind, target, axes) in enumerate(jobs):
        try:
            image = image_array(target) if kind == "layer" else io.read_image(target, lazy=True)
            axes = axes or ax.guess_axes(image.shape, model.config.in_channels)
            axes = ax.check_axes(axes, image.shape)
            probs, classes = None, None
            lazy = not isinstance(image, np.ndarray)
            if model.config.spatial_dims == 2 and ax.is_single_plane(axes) and not lazy:
                plane = np.asarray(ax.plane(image, axes, (), model.config.channel_axis))
                probs = yield from _progress(predict.iter_predict(model, plane), i, len(jobs))
                if want_instances:
                    found = instances.instance_labels(probs)
                    labels, classes = found.labels, found.classes
                else:
                    labels = instances.semantic_labels(probs)
            else:
                labels = yield from _predict_stack(model, image, axes, want_instances and not lazy,
                                                   store_folder if lazy else None, i, len(jobs))
            if kind == "file":
                io.write_mask(target.with_name(f"{target.stem}_masks.tif"), labels)
            yield kind, target, labels, probs, classes, i + 1, len(jobs)
        except UserInputError as exc:
            yield "error", target, str(exc), None, None, i + 1, len(jobs)


def _progress(events, job: int, n_jobs: int):
    """Re-yield tile progress as a fraction of all jobs; return the probabilities."""
    from . import predict

    for event in events:
        if isinstance(event, predict.TileProgress):
            yield (job + event.done / max(event.total, 1)) / n_jobs
        elif isinstance(event, predict.PredictionDone):
            return event.probabilities
    raise RuntimeError("prediction ended without a result")


def _predict_stack(model, image, axes, want_instances, store_folder, job, n_jobs):
    """Labels of a stack (numpy), or of a lazy image (a zarr array in ``store_folder``)."""
    import tempfile

    from . import axes as ax
    from . import chunked

    shape = ax.labels_shape(image.shape, axes)
    if store_folder is None:
        out = np.zeros(shape, np.uint32 if want_instances else np.uint8)
    else:
        import zarr

        store_folder.mkdir(parents=True, exist_ok=True)
        path = tempfile.mkdtemp(prefix="prediction-", suffix=".zarr", dir=store_folder)
        chunks = (1,) * (len(shape) - 2) + tuple(min(1024, n) for n in shape[-2:])
        out = zarr.open_array(path, mode="w", shape=shape, chunks=chunks, dtype=np.uint8)
    planes = max(len(ax.plane_indices(image.shape, axes, ax.spatial_of(model.config))), 1)
    done = 0
    for event in chunked.iter_predict_stack(model, image, axes, out, instances=want_instances):
        if isinstance(event, chunked.PlaneDone):
            done = event.done
        elif hasattr(event, "total"):
            yield (job + (done + event.done / max(event.total, 1)) / planes) / n_jobs
    return out


def image_array(layer):
    """Full-resolution pixels of an Image layer: numpy as is, dask/zarr kept lazy."""
    d = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return data.as_array(d)


def layer_axes(layer) -> str:
    """A layer's axes, e.g. YX, ZYX, TZYX, YXC: RGB layers end in C; other leading axes are
    Z, then T (a napari layer holds no channel axis unless it is RGB; users can type e.g.
    CYX in the widget's Axes field)."""
    shape = np.shape(layer.data[0] if getattr(layer, "multiscale", False) else layer.data)
    rgb = bool(getattr(layer, "rgb", False))
    n_stack = len(shape) - 2 - rgb
    if n_stack == 3 and not rgb:
        return "TZCYX"
    if not 0 <= n_stack <= 2:
        raise UserInputError(f"cannot tell the axes of an image of shape {tuple(shape)}; type them in Axes")
    return "TZ"[2 - n_stack:] + "YX" + ("C" if rgb else "")


def channel_axis(layer) -> str:
    from .axes import layout_of

    return layout_of(layer_axes(layer))


def spatial_shape(layer) -> tuple[int, int]:
    """(Y, X) of a layer."""
    return labels_shape(layer)[-2:]


def labels_shape(layer, axes: str | None = None) -> tuple[int, ...]:
    """Shape of a Labels layer that annotates ``layer``: its shape without channels."""
    from .axes import check_axes
    from .axes import labels_shape as shape_without_c

    arr = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    axes = check_axes(axes or layer_axes(layer), np.shape(arr))
    return shape_without_c(np.shape(arr), axes)


def plane_on_screen(layer, axes: str, point) -> tuple[int, ...]:
    """Indices along the stack axes (T, Z) of ``layer`` at the viewer's ``dims.point`` (world)."""
    from .axes import STACK_AXES, check_axes

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


def preview_pixels(image, axes: str, plane: tuple, layout: str, spatial: str = "YX", half_depth: int = 4):
    """What the trainer predicts to preview ``plane`` (indices along T/Z, as from plane_on_screen).

    Returns (pixels, k): for 2D models the plane in ``layout`` and k None; for 3D
    models (``spatial="ZYX"``) a slab of up to ``2 * half_depth + 1`` planes around
    it (Z before Y and X, channels as in ``layout``) and k, the plane's index in the slab.
    """
    from . import axes as ax

    if spatial == "YX":
        return np.asarray(ax.plane(image, axes, plane, layout)), None
    stack = [a for a in axes if a in ax.STACK_AXES]
    z = plane[stack.index("Z")]
    volume_index = tuple(i for i, a in zip(plane, stack) if a != "Z")
    volume = ax.plane(image, axes, volume_index, layout, spatial)
    n_z = np.shape(volume)[1 if layout == "first" else 0]
    z0, z1 = max(z - half_depth, 0), min(z + half_depth + 1, n_z)
    slab = volume[:, z0:z1] if layout == "first" else volume[z0:z1]
    return np.asarray(slab), z - z0


def voxel_size(layer, axes: str) -> tuple[float, float, float]:
    """(z, y, x) spacing of ``layer`` from its scale (1, 1, 1 without a Z axis)."""
    dims = [a for a in axes if not (a == "C" and getattr(layer, "rgb", False))]
    scale = list(getattr(layer, "scale", [1.0] * len(dims)))[-len(dims):]
    if "Z" not in dims or len(scale) != len(dims):
        return (1.0, 1.0, 1.0)
    return tuple(abs(float(scale[dims.index(a)])) or 1.0 for a in "ZYX")
