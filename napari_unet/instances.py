"""From class probabilities to labels: semantic classes or separate object instances.

Instances: for each object class, the pixels where it is the most likely class
are filled (holes closed), touching objects are split by a watershed on the
distance to the background, seeded at distance maxima at least ``h`` pixels
high (h-maxima: robust to ragged outlines), and objects smaller than
``min_size`` pixels are dropped. Ids run 1..N over all classes; ``classes[i]``
is the class (1-based, as in semantic labels) of object ``i + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from skimage import measure, morphology, segmentation


@dataclass
class Instances:
    """labels: (H, W) uint32 object ids, 0 = background; classes: (N,) int, class of id i+1."""

    labels: np.ndarray
    classes: np.ndarray


def semantic_labels(probabilities: np.ndarray) -> np.ndarray:
    """(K, H, W) probabilities -> (H, W) uint8 (uint16 past 255 classes): 0 = background."""
    dtype = np.uint8 if probabilities.shape[0] <= 256 else np.uint16
    return probabilities.argmax(0).astype(dtype)


def instance_labels(probabilities: np.ndarray, *, min_size: int = 30, h: float = 1.0,
                    smooth: float = 2.0, split: bool = True) -> Instances:
    """Objects from (K, H, W) probabilities; see the module docstring.

    min_size: smallest object kept, in pixels. h: minimum depth (pixels of distance)
    of a valley between two objects for them to be split. smooth: Gaussian sigma
    (pixels) applied to the distance map before finding seeds. Defaults tuned on the
    BBBC039 train fields (instance F1 0.94 -> 0.96 against h=2, smooth=1).
    """
    return instances_from_semantic(semantic_labels(probabilities), probabilities.shape[0] - 1,
                                   min_size=min_size, h=h, smooth=smooth, split=split)


def instances_from_semantic(semantic: np.ndarray, n_classes: int, *, min_size: int = 30, h: float = 1.0,
                            smooth: float = 2.0, split: bool = True, spacing=None) -> Instances:
    """Objects from (H, W) (or (Z, H, W)) semantic labels (0 = background, k = class k); see instance_labels.

    spacing: per-axis pixel spacing of volumes, e.g. a model's voxel_size (z, y, x): distances
    (and the smoothing) are then measured in units of the finest axis, so objects in stacks with
    coarse z steps are split as they are in space, not as they are in voxels.
    """
    out = np.zeros(semantic.shape, np.uint32)
    classes: list[int] = []
    if spacing is not None:
        spacing = np.asarray(spacing, float) / min(spacing)
    for k in range(1, n_classes + 1):
        objects = _objects_of_class(semantic == k, min_size, h, smooth, split, spacing)
        n = int(objects.max())
        if n:
            out[objects > 0] = objects[objects > 0] + len(classes)
            classes.extend([k] * n)
    return Instances(out, np.asarray(classes, dtype=np.int64))


def _objects_of_class(mask: np.ndarray, min_size: int, h: float, smooth: float, split: bool,
                      spacing=None) -> np.ndarray:
    """Binary mask (H, W) or (Z, H, W) -> labelled objects of the same shape, int32, ids 1..N consecutive."""
    if not mask.any():
        return np.zeros(mask.shape, np.int32)
    mask = ndi.binary_fill_holes(mask)
    mask = morphology.remove_small_objects(mask, max_size=min_size - 1) if min_size > 1 else mask
    if split:
        distance = ndi.distance_transform_edt(mask, sampling=spacing)
        if smooth > 0:
            distance = ndi.gaussian_filter(distance, smooth if spacing is None else smooth / spacing)
        seeds = measure.label(h_maxima(distance, h) & mask)
        labels = segmentation.watershed(-distance, seeds, mask=mask)
        # a component whose maximum was lower than h gets no seed: keep it whole
        unseeded = mask & (labels == 0)
        if unseeded.any():
            extra = measure.label(unseeded)
            labels[extra > 0] = extra[extra > 0] + labels.max()
    else:
        labels = measure.label(mask)
    labels = morphology.remove_small_objects(labels, max_size=min_size - 1) if min_size > 1 else labels
    return segmentation.relabel_sequential(labels.astype(np.int32))[0]


def h_maxima(image: np.ndarray, h: float) -> np.ndarray:
    """``skimage.morphology.h_maxima(image, h)`` for an image >= 0, one component of image > 0 at a time.

    The same uint8 mask, faster: the grey reconstruction inside h_maxima sorts every pixel,
    and the smoothed distance map is > 0 on about a third of a nuclei field. Components are
    independent: any path between two of them crosses a 0, where the reconstruction is capped
    at 0, and each component, padded with one 0, reaches 0 on its own when its top is h high.
    Where the components' boxes add up to more than 0.8 of the image (one component filling
    it: 2x slower in pieces), the whole image is reconstructed at once instead. Nuclei field
    520 x 696: 0.15 -> 0.05 s; a predicted 2048^2 field (boxes 0.52 of it): 3.5 -> 0.7 s.
    """
    footprint = np.ones((3,) * image.ndim, bool)  # h_maxima's connectivity
    components, _ = ndi.label(image > 0, structure=footprint)
    boxes = ndi.find_objects(components)
    if sum(np.prod([s.stop - s.start for s in box]) for box in boxes) > 0.8 * image.size:
        return morphology.h_maxima(image, h)  # boxes that overlap or fill the image: no gain
    out = np.zeros(image.shape, np.uint8)
    for i, box in enumerate(boxes, start=1):
        inside = components[box] == i
        crop = np.pad(np.where(inside, image[box], 0), 1)  # the 0 around it, as in the whole image
        peaks = morphology.h_maxima(crop, h)[(slice(1, -1),) * image.ndim]
        out[box][inside] = peaks[inside]
    return out

