"""The network's config: a small dataclass of plain values, saved inside every model file and sent to
the trainer process. No torch here, so the viewer can build it at no cost.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ...errors import UserInputError

# sensible bounds of a network (a model file outside them is damaged or hostile: depth 8 at
# width 16 is already 2.2 GB of weights)
LIMITS = {"depth": (1, 6), "width": (1, 128), "in_channels": (1, 64), "n_classes": (1, 254)}


@dataclass
class UNetConfig:
    """Architecture and everything needed to feed the network; saved in every model file.

    in_channels: image channels the model expects (1 grayscale, 3 RGB, ...).
    n_classes: object classes (annotation values 2..n_classes+1).
    depth: number of 2x down-samplings; inputs are padded to a multiple of 2**depth.
    width: channels of the first level; level ``i`` has ``width * 2**i``.
    class_names: one name per object class.
    channel_axis: where channels sit in the user's image: "none" (grayscale),
        "last" (YXC, e.g. RGB) or "first" (CYX).
    norm_percentiles: per-image, per-channel percentiles mapped to 0 and 1.
    spatial_dims: 2 (planes: the image is (Y, X) plus channels) or 3 (volumes: (Z, Y, X)).
    voxel_size: (z, y, x) spacing of the training volumes (3D only; any unit, only the
        ratios matter); sets the anisotropic pooling of ``pool_schedule``.
    diameter: the typical object diameter (px) of the training images, as ``prediction.size`` measures
        it, or None (not known: images are never rescaled for this model). Prediction rescales an
        image whose objects are another size so that they come at this one.
    invert_bright_background: images whose background is bright are inverted before the network
        (``convert``): the nuclei generalist learned objects bright on dark.
    split_head: the output that learns where touching objects part, from painted whole objects
        (``training.painted``): "distance" (each object's normalised distance to its edge), "border" (its
        edge band) or "none". Model files written before it existed read as "none".
    """

    in_channels: int = 1
    n_classes: int = 1
    depth: int = 3
    width: int = 16
    class_names: list[str] = field(default_factory=lambda: ["object"])
    channel_axis: str = "none"
    norm_percentiles: tuple[float, float] = (1.0, 99.8)
    spatial_dims: int = 2
    voxel_size: tuple[float, ...] = (1.0, 1.0, 1.0)
    split_head: str = "distance"
    diameter: float | None = None
    invert_bright_background: bool = False

    def __post_init__(self):
        for key, (low, high) in LIMITS.items():
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise UserInputError(f"{key} must be a whole number from {low} to {high}, got {value!r}")
        if self.spatial_dims not in (2, 3):
            raise UserInputError(f"spatial_dims must be 2 or 3, got {self.spatial_dims!r}")
        if self.split_head not in ("none", "distance", "border"):
            raise UserInputError(f"split_head must be none, distance or border, got {self.split_head!r}")
        if self.channel_axis not in ("none", "last", "first"):
            raise UserInputError(f"channel_axis must be none, last or first, got {self.channel_axis!r}")
        self.norm_percentiles = tuple(float(p) for p in self.norm_percentiles)
        if len(self.norm_percentiles) != 2 or not 0 <= self.norm_percentiles[0] < self.norm_percentiles[1] <= 100:
            raise UserInputError(f"norm_percentiles must be 0 <= low < high <= 100, got {self.norm_percentiles}")
        if self.diameter is not None:
            if isinstance(self.diameter, bool) or not isinstance(self.diameter, (int, float)) or \
                    not (math.isfinite(self.diameter) and 1 <= self.diameter <= 10_000):
                raise UserInputError(f"the diameter must be a number of pixels from 1 to 10000, got {self.diameter!r}")
            self.diameter = float(self.diameter)
        self.invert_bright_background = bool(self.invert_bright_background)
        self.voxel_size = tuple(float(v) for v in self.voxel_size)
        if len(self.voxel_size) != 3 or not all(math.isfinite(v) and v > 0 for v in self.voxel_size):
            raise UserInputError(f"the voxel size must be three positive (z, y, x) spacings, got {self.voxel_size}")
        self.class_names = [str(n) for n in self.class_names]
        if len(self.class_names) != self.n_classes:
            names = list(self.class_names[: self.n_classes])
            names += [f"class {i + 1}" for i in range(len(names), self.n_classes)]
            self.class_names = names

    @property
    def n_outputs(self) -> int:
        """Class outputs: background and each object class (softmax)."""
        return self.n_classes + 1

    @property
    def n_split_outputs(self) -> int:
        """Outputs after the classes that learn the split of touching objects (sigmoid): 0 or 1."""
        return 0 if self.split_head == "none" else 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["norm_percentiles"] = list(self.norm_percentiles)
        d["voxel_size"] = list(self.voxel_size)
        return d
