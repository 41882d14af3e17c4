"""The U-Net: a contracting path, a symmetric expanding path and skip connections.

Shape contract
--------------
``UNet(config)(x)`` takes ``x`` of shape ``(N, in_channels, H, W)``, float32 (or bf16
under autocast), any ``H, W >= 1``, and returns logits of shape
``(N, n_outputs, H, W)`` where ``n_outputs = n_classes + 1`` (output 0 is background,
output ``k`` the ``k``-th object class). Inputs whose size is not a multiple of
``2**depth`` are reflect-padded at the bottom/right and the output is cropped back,
so nothing is ever resized.

Channel counts double with depth (``width, 2*width, ..., width * 2**depth``), as
in Ronneberger et al. 2015; we use padded 3x3 convolutions, so output and input
have the same size, and batch normalisation, which trains fast from small batches
and folds into the convolutions at inference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


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
    """

    in_channels: int = 1
    n_classes: int = 1
    depth: int = 3
    width: int = 16
    class_names: list[str] = field(default_factory=lambda: ["object"])
    channel_axis: str = "none"
    norm_percentiles: tuple[float, float] = (1.0, 99.8)

    def __post_init__(self):
        self.norm_percentiles = tuple(float(p) for p in self.norm_percentiles)
        self.class_names = [str(n) for n in self.class_names]
        if len(self.class_names) != self.n_classes:
            names = list(self.class_names[: self.n_classes])
            names += [f"class {i + 1}" for i in range(len(names), self.n_classes)]
            self.class_names = names

    @property
    def n_outputs(self) -> int:
        return self.n_classes + 1

    def to_dict(self) -> dict:
        d = asdict(self)
        d["norm_percentiles"] = list(self.norm_percentiles)
        return d


class ConvBlock(nn.Sequential):
    """Two (3x3 conv -> batch norm -> ReLU); keeps the spatial size."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """2x2 max-pool then a ConvBlock: halves H and W."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.MaxPool2d(2), ConvBlock(c_in, c_out))


class Up(nn.Module):
    """2x transposed-conv up-sampling, concatenation with the skip, then a ConvBlock."""

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
        self.conv = ConvBlock(c_out + c_skip, c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """2D U-Net; see the module docstring for the shape contract."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        chans = [config.width * 2**i for i in range(config.depth + 1)]
        self.stem = ConvBlock(config.in_channels, chans[0])
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1]) for i in range(config.depth))
        self.ups = nn.ModuleList(
            Up(chans[i + 1], chans[i], chans[i]) for i in reversed(range(config.depth))
        )
        self.head = nn.Conv2d(chans[0], config.n_outputs, 1)

    @property
    def size_multiple(self) -> int:
        return 2**self.config.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            # reflect needs pad < size; replicate covers tiny inputs
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        x = self.stem(x)
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(x)
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[..., :h, :w]


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@dataclass
class SegmentationModel:
    """What a model file holds: the network, its config and a training summary.

    ``summary`` is a plain dict (steps, seconds, final loss, device, images...) that
    grows with every training round, so a model file tells how it was made.
    """

    config: UNetConfig
    net: UNet
    summary: dict = field(default_factory=dict)

    @classmethod
    def new(cls, config: UNetConfig) -> "SegmentationModel":
        return cls(config=config, net=UNet(config))

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device
