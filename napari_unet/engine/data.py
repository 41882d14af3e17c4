"""Images and annotations in, training batches out.

The label convention (the same in the GUI, the CLI and files)
--------------------------------------------------------------
Annotations (what the user paints):
    0 = not annotated (ignored by the loss), 1 = background, 2..K+1 = object classes
    (2 = the first class).
Predictions (what the model returns):
    semantic: 0 = background, k >= 1 = the k-th object class (annotation value k+1);
    instances: 0 = background, each object its own id >= 1 (its class kept alongside).

Images are turned into ``(C, H, W)`` float32 arrays, normalised per image and
channel by percentiles (stored in the model config, so prediction sees exactly
what training saw).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError

UNLABELED = 0
BACKGROUND = 1
FIRST_CLASS = 2

CHANNEL_AXES = ("none", "last", "first")
_MAX_PERCENTILE_SAMPLES = 2_000_000


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


def to_channels_first(image, channel_axis: str, spatial_dims: int = 2):
    """Return a view of shape (C, *spatial) in the image's own dtype (no copy; dask stays lazy).

    spatial_dims: 2 for planes (Y, X), 3 for volumes (Z, Y, X); channels sit before
    ("first"), after ("last") or nowhere ("none"): see ``layout.input_layout`` for the guess.
    """
    image = as_array(image)
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if image.dtype.kind not in "uif":
        raise UserInputError(f"image dtype {image.dtype} is not numeric; convert it to a number type")
    axis = channel_axis
    if axis not in CHANNEL_AXES:
        raise UserInputError(f"channel axis {axis!r} unknown; use one of {', '.join(CHANNEL_AXES)}")
    expected_ndim = spatial_dims + (axis != "none")
    if image.ndim != expected_ndim:
        kind = "2D" if spatial_dims == 2 else "3D (volume)"
        raise UserInputError(
            f"image has shape {image.shape} but the {kind} model expects channel layout {axis!r} "
            f"({expected_ndim} dimensions); give a matching image or another model"
        )
    if axis == "none":
        return image[None]
    if axis == "last":
        return np.moveaxis(image, -1, 0)
    return image


def percentile_range(image_chw: np.ndarray, percentiles=(1.0, 99.8)) -> np.ndarray:
    """Per-channel (low, high) intensities, shape (C, 2) float64, from a strided subsample.

    image_chw: (C, H, W) or (C, Z, H, W). Subsampling (in Y and X) keeps this O(1)
    in memory for huge images; NaN/inf pixels are ignored.
    """
    c, h, w = image_chw.shape[0], *image_chw.shape[-2:]
    per_plane = int(np.prod(image_chw.shape[1:-2], dtype=np.int64))
    step = max(1, int(np.sqrt(h * w * per_plane / _MAX_PERCENTILE_SAMPLES)))
    sample = np.asarray(image_chw[..., ::step, ::step], dtype=np.float64).reshape(c, -1)
    out = np.zeros((c, 2))
    for i, row in enumerate(sample):
        row = row[np.isfinite(row)]
        if row.size:
            out[i] = np.percentile(row, percentiles)
    return out


def normalize(image_chw: np.ndarray, value_range: np.ndarray) -> np.ndarray:
    """Map ``value_range`` (C, 2) to [0, 1] per channel; returns float32 (C, *spatial), NaN/inf -> 0."""
    expand = (slice(None),) + (None,) * (np.ndim(image_chw) - 1)
    lo = value_range[:, 0].astype(np.float32)[expand]
    scale = (value_range[:, 1] - value_range[:, 0]).astype(np.float32)
    scale = np.where(scale > 1e-12, scale, 1.0).astype(np.float32)[expand]
    out = (np.asarray(image_chw, dtype=np.float32) - lo) / scale
    if not np.isfinite(out).all():
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def prepare_image(image, channel_axis: str, percentiles, spatial_dims: int = 2) -> np.ndarray:
    """Raw image -> normalised float32 (C, *spatial)."""
    chw = to_channels_first(image, channel_axis, spatial_dims)
    return normalize(chw, percentile_range(chw, percentiles))


def check_annotations(annotations, image_shape_hw: tuple[int, ...]) -> np.ndarray:
    """Validate one annotation image and return it as int16 (H, W) (or (Z, H, W) for volumes).

    Raises UserInputError for a wrong shape, negative or fractional values.
    """
    ann = np.asarray(annotations)
    if ann.shape != tuple(image_shape_hw):
        raise UserInputError(
            f"annotations have shape {ann.shape} but the image is {tuple(image_shape_hw)}; "
            "paint on a Labels layer of the image's shape"
        )
    if ann.dtype == bool:
        raise UserInputError(
            "annotations are boolean; use 1 for background and 2.. for object classes"
        )
    if ann.dtype.kind == "f":
        if not np.isfinite(ann).all() or not np.array_equal(ann, np.round(ann)):
            raise UserInputError("annotations contain fractional or NaN values; use whole numbers 0..K")
    elif ann.dtype.kind not in "ui":
        raise UserInputError(f"annotations of dtype {ann.dtype} are not labels; use integers")
    if ann.size and ann.min() < 0:
        raise UserInputError("annotations contain negative values; use 0 (unlabeled), 1 (background), 2.. (classes)")
    if ann.size and ann.max() > 255:
        values = np.unique(ann.ravel()[:: max(1, ann.size // 200_000)])  # a subsample: enough to tell
        if len(values) > 50:
            raise UserInputError(f"this looks like an image, not annotations (values up to {int(ann.max())}, "
                                 f"{len(values)}+ different ones); give the painted labels: 0 unlabeled, 1 "
                                 "background, 2.. classes")
        raise UserInputError(f"annotation value {int(ann.max())} is too large; use at most 255 (254 classes)")
    return ann.astype(np.int16)


def check_training_set(annotations: list[np.ndarray], n_classes: int | None) -> int:
    """Check that the annotations can train a model; return the number of object classes.

    n_classes: the model's class count when fine-tuning (None: taken from the data).
    """
    present = set()
    for ann in annotations:
        present.update(np.unique(ann).tolist())
    present.discard(UNLABELED)
    if not present:
        raise UserInputError(
            "no annotations found; paint background (label 1) and objects (label 2) first"
        )
    if BACKGROUND not in present:
        raise UserInputError("only object labels were painted; also paint some background with label 1")
    if len(present) < 2:
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


def prediction_to_annotations(pred: np.ndarray, instance_mode: bool, classes=None) -> np.ndarray:
    """Prediction labels (H, W) -> annotation values (H, W) uint8: background 1, class k -> k + 1.

    instance_mode: ``pred`` holds object ids; ``classes[i]`` is the class of id i+1 (ids
    without a known class, e.g. newly painted objects, count as the first class).
    """
    pred = np.asarray(pred)
    if not instance_mode:
        return np.where(pred > 0, pred.astype(np.int64) + 1, BACKGROUND).astype(np.uint8)
    if classes is None or len(classes) == 0:
        return np.where(pred > 0, FIRST_CLASS, BACKGROUND).astype(np.uint8)
    lut = np.full(int(max(pred.max(), len(classes))) + 1, FIRST_CLASS, np.uint8)
    lut[0] = BACKGROUND
    lut[1:len(classes) + 1] = np.asarray(classes) + 1
    return lut[pred]


def crop_padded(array: np.ndarray, starts, sizes, mode: str) -> np.ndarray:
    """Crop the last ``len(starts)`` axes of ``array`` at ``starts`` with ``sizes``, padding outside.

    mode: "reflect" (mirror the image; works for any size) or "zeros" (for annotations:
    0 means not annotated, so padding is ignored by the loss).
    """
    lead = array.ndim - len(starts)
    shape = array.shape[lead:]
    inside = [(max(s, 0), min(s + n, dim)) for s, n, dim in zip(starts, sizes, shape)]
    crop = array[(Ellipsis,) + tuple(slice(a, b) for a, b in inside)]
    pads = [(a - s, s + n - b) for (a, b), s, n in zip(inside, starts, sizes)]
    if not any(p for pair in pads for p in pair):
        return crop
    pad_width = [(0, 0)] * lead + pads
    if mode == "zeros":
        return np.pad(crop, pad_width)
    # "symmetric" mirrors including the edge pixel, which works even for 1-pixel images;
    # np.pad repeats the mirroring when the pad is larger than the array.
    return np.pad(crop, pad_width, mode="symmetric")


class PatchSampler:
    """Draws training patches centred on annotated pixels (2D planes or 3D volumes).

    Each patch: pick an image, then a class present in it (uniformly, so a few
    object dabs weigh as much as long background strokes), then one stroke of that
    class (a connected part of its annotations, uniformly: one large correction, e.g. an
    erased 1500-px nucleus turned into background, weighs as much as one short stroke, not as
    much as all the other strokes together), then one pixel of it; the patch is centred near
    it, so it always holds annotations plus half a patch of context around them.

    patch_size: side in pixels (2D), or a per-axis shape such as (16, 64, 64) (3D).
    targets: per image, the split output's targets (``objects.split_targets``: -1 unknown) or
        None; cropped, flipped and turned with their patches. None: no image has any.
    by_stroke: pick a stroke, then a pixel of it (else any pixel of the class: one large stroke
        then draws most patches; benchmarks/corrections.py measures it).
    """

    def __init__(self, images: list[np.ndarray], annotations: list[np.ndarray], patch_size, rng, targets=None,
                 by_stroke: bool = True):
        self.images = images
        self.annotations = annotations
        self.patch_size = patch_size
        self.rng = rng
        # kept shifted by +1, so that 0 means "unknown" as it does in the annotations (and padding)
        targets = targets if targets is not None and any(t is not None for t in targets) else None
        self.shifted_targets = None if targets is None else \
            [None if t is None else (t + 1.0).astype(np.float32) for t in targets]
        self.coords = []  # per image, per present label, per stroke: (N, ndim) pixel coordinates
        for ann in annotations:
            per_class = [_strokes(ann == v) if by_stroke else [np.argwhere(ann == v)]
                         for v in np.unique(ann) if v != UNLABELED]
            self.coords.append([c for c in per_class if c])
        self.usable = [i for i, c in enumerate(self.coords) if c]

    @property
    def patch_shape(self) -> tuple[int, ...]:
        ndim = self.annotations[0].ndim
        return tuple(self.patch_size) if np.ndim(self.patch_size) else (int(self.patch_size),) * ndim

    def sample(self, batch_size: int):
        """Return images (B, C, *patch) float32, annotations (B, *patch) int16 and the split targets
        (B, *patch) float32, shifted by +1 (0 unknown), or None when no image has any."""
        shape = np.array(self.patch_shape)
        xs, ys, ts = [], [], []
        for _ in range(batch_size):
            i = self.usable[self.rng.integers(len(self.usable))]
            per_class = self.coords[i]
            strokes = per_class[self.rng.integers(len(per_class))]
            pts = strokes[self.rng.integers(len(strokes))]
            centre = pts[self.rng.integers(len(pts))]
            jitter = self.rng.integers(-(shape // 4), shape // 4 + 1)
            starts = centre + jitter - shape // 2
            img = crop_padded(self.images[i], starts, shape, "reflect")
            ann = crop_padded(self.annotations[i], starts, shape, "zeros")
            target = None
            if self.shifted_targets is not None:
                shifted = self.shifted_targets[i]
                target = np.zeros(ann.shape, np.float32) if shifted is None else \
                    crop_padded(shifted, starts, shape, "zeros")
            img, ann, target = _random_flips(img, ann, self.rng, target)
            xs.append(img)
            ys.append(ann)
            ts.append(target)
        targets = None if self.shifted_targets is None else np.stack(ts)
        return np.stack(xs).astype(np.float32, copy=False), np.stack(ys), targets

    def sample_uniform(self, batch_size: int, size: int) -> np.ndarray:
        """Crops (B, C, *spatial) float32 at uniformly random places: what prediction sees.

        size: side in Y and X; volumes are cropped to at most ``size // 4`` planes in Z.
        """
        out = []
        for _ in range(batch_size):
            img = self.images[self.rng.integers(len(self.images))]
            spatial = img.shape[1:]
            crop = (size,) * 2 if len(spatial) == 2 else (min(spatial[0], max(size // 4, 1)), size, size)
            starts = [self.rng.integers(max(n - c, 0) + 1) for n, c in zip(spatial, crop)]
            out.append(crop_padded(img, starts, crop, "reflect"))
        return np.stack(out).astype(np.float32, copy=False)


def _strokes(mask: np.ndarray) -> list[np.ndarray]:
    """The pixel coordinates (N, ndim) of each connected part of ``mask`` (8-/26-connected)."""
    from scipy import ndimage as ndi

    parts, n = ndi.label(mask, structure=np.ones((3,) * mask.ndim, bool))
    if n <= 1:
        return [np.argwhere(mask)] if n else []
    coords = np.argwhere(parts > 0)
    order = np.argsort(parts[tuple(coords.T)], kind="stable")
    return np.split(coords[order], np.cumsum(np.bincount(parts[tuple(coords.T)], minlength=n + 1)[1:-1]))


def _random_flips(img: np.ndarray, ann: np.ndarray, rng, target=None):
    """One of the 8 flips/90-degree rotations in (Y, X), the same for image (C, ..., H, W),
    annotation and target (..., H, W; target may be None); volumes are also flipped in Z half of
    the time.

    Rotations only turn square patches (anisotropic volumes keep their Z axis apart).
    """
    arrays = [ann] if target is None else [ann, target]
    if img.shape[-1] == img.shape[-2]:
        k = int(rng.integers(4))
        img, arrays = np.rot90(img, k, axes=(-2, -1)), [np.rot90(a, k, axes=(-2, -1)) for a in arrays]
    if rng.integers(2):
        img, arrays = img[..., ::-1], [a[..., ::-1] for a in arrays]
    if ann.ndim == 3 and rng.integers(2):
        img, arrays = img[..., ::-1, :, :], [a[::-1] for a in arrays]
    arrays = [np.ascontiguousarray(a) for a in arrays]
    return np.ascontiguousarray(img), arrays[0], (arrays[1] if target is not None else None)
