"""Per-object measurements of an instance mask: what a biologist does right after segmenting.

One row per object (scikit-image's ``regionprops_table``): ``label``, ``class`` and ``class_name``,
``area`` (pixels; voxels for 3D objects, also as ``volume``), with ``area_<unit>2`` (``volume_<unit>3``)
when a pixel size is given, the centroid, the bounding box (``bbox-0``.. : start, then stop,
exclusive), the mean, min and max intensity of each channel, and for 2D objects the perimeter,
eccentricity and solidity. Stacks of planes are measured plane by plane, with their plane's
indices as columns (``t``, ``z``), since objects are numbered per plane there.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ...errors import UserInputError

SHAPE_2D = ("perimeter", "eccentricity", "solidity")


def measure_objects(labels: np.ndarray, image=None, classes=None, class_names=None, pixel_size: float | None = None,
                    unit: str = "um") -> dict[str, np.ndarray]:
    """Columns (name -> (N,) array) for the N objects of ``labels`` ((Y, X) or (Z, Y, X) ids, 0 = background).

    image: the intensities, (*labels.shape) or (*labels.shape, C) (channels last), or None.
    classes: the class (1-based) of each id 1..max, or None (all the first class).
    pixel_size: the side of a pixel (voxel) in ``unit``, for the physical areas (volumes).
    """
    from skimage.measure import regionprops_table

    labels = np.asarray(labels)
    if labels.dtype.kind not in "ui" or (labels.size and labels.min() < 0):
        raise UserInputError("measurements need an instance mask: non-negative integer ids, 0 = background")
    properties = ["label", "area", "centroid", "bbox"] + (list(SHAPE_2D) if labels.ndim == 2 else [])
    intensity = None
    if image is not None:
        intensity = np.asarray(image, np.float64)
        if intensity.shape[:labels.ndim] != labels.shape:
            raise UserInputError(f"the image has shape {intensity.shape}, the mask {labels.shape}; measure the "
                                 "mask of that image")
        properties += ["intensity_mean", "intensity_min", "intensity_max"]
    table = regionprops_table(labels, intensity_image=intensity, properties=properties)
    ids = table["label"].astype(np.int64)
    out = {"label": ids}
    known = np.asarray(classes if classes is not None else [], np.int64)
    cls = np.ones(len(ids), np.int64)  # ids without a known class (e.g. painted by the user): the first
    inside = ids <= len(known)
    cls[inside] = known[ids[inside] - 1]
    out["class"] = cls
    names = list(class_names or ["object"])
    out["class_name"] = np.asarray([names[c - 1] if 0 < c <= len(names) else f"class {c}" for c in cls], object)
    out["area"] = table["area"].astype(np.int64)
    if labels.ndim == 3:
        out["volume"] = out["area"]
    if pixel_size:
        key, power = ("volume", 3) if labels.ndim == 3 else ("area", 2)
        out[f"{key}_{unit}{power}"] = out["area"] * float(pixel_size) ** power
    for name, values in table.items():
        if name.startswith(("centroid", "bbox")) or name in SHAPE_2D or name.startswith("intensity"):
            out[_column(name)] = values
    return out


def _column(name: str) -> str:
    """regionprops_table's column names, with intensities of channel k as ``intensity_mean-ck``."""
    base, _, channel = name.partition("-")
    return f"{base}-c{channel}" if base.startswith("intensity") and channel else name


def write_csv(path, columns: dict[str, np.ndarray]) -> Path:
    """Write columns as CSV (one row per object), atomically; returns the path."""
    from ..files import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise UserInputError(f"measurements are written as CSV; name the file e.g. {path.with_suffix('.csv').name}")
    names = list(columns)
    rows = zip(*[columns[n] for n in names]) if names else []
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(v) for v in row])
    return path


def _cell(value):
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return value.item() if isinstance(value, np.generic) else value


def stack_columns(parts) -> dict[str, np.ndarray]:
    """One table from several: [(extra columns, e.g. {"z": 3}, table)], the extra columns first."""
    parts = [(extra, table) for extra, table in parts if len(table.get("label", ()))]
    if not parts:
        return {"label": np.zeros(0, np.int64)}
    names = list(parts[0][0]) + [n for n in parts[0][1]]
    out = {}
    for n in names:
        values = [np.full(len(t["label"]), extra[n]) if n in extra else t.get(n, np.full(len(t["label"]), np.nan))
                  for extra, t in parts]
        out[n] = np.concatenate(values)
    return out


def measure_image(labels, image, axes: str, spatial: str = "YX", classes=None, class_names=None,
                  pixel_size: float | None = None, unit: str = "um") -> dict[str, np.ndarray]:
    """Measurements of an image's instance mask, any layout: ``image`` in ``axes``, ``labels`` of
    ``layout.labels_shape``. Each plane (volume, with ``spatial="ZYX"``) of a stack is measured on
    its own, its indices as the first columns (``t``, ``z``). classes: of a single plane's ids."""
    from .. import layout as ax

    stack = ax.stack_axes(axes, spatial)
    parts = []
    for index in ax.plane_indices(np.shape(image), axes, spatial):
        plane_labels = np.asarray(labels[ax.label_plane_key(axes, index, spatial)])
        pixels = np.moveaxis(np.asarray(ax.plane(image, axes, index, spatial)), 0, -1)  # channels last
        pixels = pixels if "C" in axes else pixels[..., 0]
        table = measure_objects(plane_labels, pixels, classes if not stack else None, class_names, pixel_size, unit)
        parts.append(({a.lower(): i for a, i in zip(stack, index)}, table))
    return stack_columns(parts)
