"""Training patches: drawn around the user's strokes, flipped and turned (see ``PatchSampler``)."""

from __future__ import annotations

import numpy as np

from ..convention import UNLABELED
from ..crops import crop_padded


class PatchSampler:
    """Draws training patches centred on annotated pixels (2D planes or 3D volumes).

    Each patch: pick an image, then a class present in it (uniformly, so a few
    object dabs weigh as much as long background strokes; a class's painted whole objects count
    as a class of their own, see ``_class_groups``), then one stroke of that
    class (a connected part of its annotations, uniformly: one large correction, e.g. an
    erased 1500-px nucleus turned into background, weighs as much as one short stroke, not as
    much as all the other strokes together), then one pixel of it; the patch is centred near
    it, so it always holds annotations plus half a patch of context around them.

    patch_size: side in pixels (2D), or a per-axis shape such as (16, 64, 64) (3D).
    targets: per image, the split output's targets (``objects.split_targets``: -1 unknown) or
        None; cropped, flipped and turned with their patches. None: no image has any.
    by_stroke: pick a stroke, then a pixel of it (else any pixel of the class: one large stroke
        then draws most patches; benchmarks/corrections.py measures it).
    anywhere: the share of patches centred anywhere in an image instead (painted or not), where only
        the term that keeps the starting model's prediction teaches (``TrainConfig.prior_patches``).
    """

    def __init__(self, images: list[np.ndarray], annotations: list[np.ndarray], patch_size, rng, targets=None,
                 by_stroke: bool = True, anywhere: float = 0.0):
        self.images = images
        self.anywhere = anywhere
        self.annotations = annotations
        self.patch_size = patch_size
        self.rng = rng
        # kept shifted by +1, so that 0 means "unknown" as it does in the annotations (and padding)
        targets = targets if targets is not None and any(t is not None for t in targets) else None
        self.shifted_targets = None if targets is None else \
            [None if t is None else (t + 1.0).astype(np.float32) for t in targets]
        self.coords = []  # per image, per group (``_class_groups``), per stroke: (N, ndim) pixel coordinates
        for i, ann in enumerate(annotations):
            painted = None if targets is None or targets[i] is None else targets[i] > 0
            groups = []
            for v in np.unique(ann):
                if v != UNLABELED:
                    groups += _class_groups(ann == v, painted) if by_stroke else [[np.argwhere(ann == v)]]
            self.coords.append([g for g in groups if g])
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
            i, centre = self._stroke_point()
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

    def _stroke_point(self):
        """(image index, an annotated pixel's coordinates): an image, then a class, a stroke of that class
        and a pixel of that stroke, each at random (so that a few strokes weigh as much as a large one); or,
        a share ``anywhere`` of the time, any pixel of any image."""
        if self.anywhere > 0 and self.rng.random() < self.anywhere:
            i = int(self.rng.integers(len(self.annotations)))
            return i, np.array([self.rng.integers(n) for n in self.annotations[i].shape])
        i = self.usable[self.rng.integers(len(self.usable))]
        per_class = self.coords[i]
        strokes = per_class[self.rng.integers(len(per_class))]
        pts = strokes[self.rng.integers(len(strokes))]
        return i, pts[self.rng.integers(len(pts))]

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


def _class_groups(mask: np.ndarray, painted: np.ndarray | None) -> list[list[np.ndarray]]:
    """The strokes of one class (``mask``), in the groups a patch picks from uniformly: its painted whole
    objects (``painted``: where split targets are above 0), which alone teach the split output, apart
    from its other annotations. Together, an accepted prediction's objects outnumbered the corrections:
    on a Usiigaci field, 5 painted cells among 40 accepted parts drew 2.4 % of the patches (half of them
    without the accepted prediction)."""
    if painted is None or not (mask & painted).any():
        return [_strokes(mask)]
    return [_strokes(mask & ~painted), _strokes(mask & painted)]


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


class DeviceSampler(PatchSampler):
    """The patches of ``PatchSampler`` (2D), cut, turned, flipped and warped on the training device in one
    pass: the images, annotations and split targets live there as tensors, the host only draws where
    each patch lies (the same choice of image, class, stroke and pixel) and how it is turned, and one
    ``grid_sample`` per image reads all of its patches through their combined transform. So nothing is
    cropped, copied or flipped per patch in numpy, the same code runs on the CPU, CUDA and MPS, and a
    patch warped near its edge reads the image around it rather than a mirror of itself.

    affine: the keyword arguments of ``augment.affine_matrices`` (None: turns and flips only).
    """

    def __init__(self, images, annotations, patch_size, rng, device, gen, targets=None, by_stroke: bool = True,
                 affine: dict | None = None, anywhere: float = 0.0):
        import torch

        super().__init__(images, annotations, patch_size, rng, targets, by_stroke, anywhere)
        self.device, self.gen, self.affine = device, gen, affine
        self._images = [torch.from_numpy(np.ascontiguousarray(im, np.float32))[None].to(device) for im in images]
        maps = []
        for i, ann in enumerate(annotations):
            layers = [np.asarray(ann, np.float32)]
            if self.shifted_targets is not None:
                target = self.shifted_targets[i]
                layers.append(np.zeros(ann.shape, np.float32) if target is None else target)
            maps.append(torch.from_numpy(np.stack(layers))[None].to(device))
        self._labels = maps

    def sample(self, batch_size: int):
        """Images (B, C, P, P), annotations (B, P, P) and shifted split targets (B, P, P) or None, as torch
        tensors on the device, geometric augmentation done."""
        import torch
        import torch.nn.functional as F

        from .augment import affine_matrices

        p = int(self.patch_shape[-1])
        picks, centres, turns = [], [], []
        for _ in range(batch_size):
            i, point = self._stroke_point()
            centre = point + self.rng.integers(-(p // 4), p // 4 + 1, size=2)
            picks.append(i)
            centres.append(centre - p // 2 + (p - 1) / 2)  # the crop's centre, as PatchSampler cuts it
            turns.append((int(self.rng.integers(4)), int(self.rng.integers(2))))
        warp = affine_matrices(batch_size, self.gen, **self.affine) if self.affine else \
            torch.eye(2).expand(batch_size, 2, 2)
        xs, labels = [None] * batch_size, [None] * batch_size
        for i in sorted(set(picks)):
            rows = [b for b, j in enumerate(picks) if j == i]
            grid = self._grid([centres[b] for b in rows], [turns[b] for b in rows], warp[rows], p, i)
            image = self._images[i].expand(len(rows), -1, -1, -1)
            x = F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
            lab = F.grid_sample(self._labels[i].expand(len(rows), -1, -1, -1), grid, mode="nearest",
                                padding_mode="zeros", align_corners=False)
            for k, b in enumerate(rows):
                xs[b], labels[b] = x[k], lab[k]
        x, lab = torch.stack(xs), torch.stack(labels)
        return x, lab[:, 0], (lab[:, 1] if lab.shape[1] > 1 else None)

    def _grid(self, centres, turns, warp, p: int, index: int):
        """(n, p, p, 2) sampling grid in image ``index``'s normalised coordinates: output pixel q (centred)
        reads the image at centre + turn(flip(warp q))."""
        import torch

        h, w = self._images[index].shape[-2:]
        offsets = torch.arange(p, dtype=torch.float32) - (p - 1) / 2
        qy, qx = torch.meshgrid(offsets, offsets, indexing="ij")
        q = torch.stack([qx, qy], -1).reshape(-1, 2)  # (x, y), as affine_grid orders them
        grids = []
        for (cy, cx), (k, flip), m in zip(centres, turns, warp):
            angle = k * np.pi / 2
            turn = torch.tensor([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float32)
            if flip:
                turn = turn @ torch.tensor([[-1.0, 0.0], [0.0, 1.0]])
            xy = q @ (turn @ m.float()).T + torch.tensor([cx, cy], dtype=torch.float32)
            grids.append(torch.stack([(2 * xy[:, 0] + 1) / w - 1, (2 * xy[:, 1] + 1) / h - 1], -1))
        return torch.stack(grids).reshape(len(centres), p, p, 2).to(self._images[index].device)
