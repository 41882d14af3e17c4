"""The U-Net: a contracting path, a symmetric expanding path and skip connections.

Shape contract
--------------
``UNet(config)(x)`` takes ``x`` of shape ``(N, in_channels, H, W)`` (2D, the default)
or ``(N, in_channels, D, H, W)`` (``spatial_dims=3``), float32 (or bf16 under
autocast), any sizes ``>= 1``, and returns logits of shape
``(N, n_outputs + n_split_outputs, *spatial)`` where ``n_outputs = n_classes + 1``
(output 0 is background, output ``k`` the ``k``-th object class: a softmax over these)
and the last ``n_split_outputs`` (0 or 1) is the split output (a sigmoid: see
``training.painted``), which learns from painted whole objects where touching objects part. Inputs whose size is not a multiple of ``size_multiples``
(``2**depth`` per axis in 2D) are padded at the end and the output is cropped back,
so nothing is ever resized.

Anisotropic volumes (3D)
------------------------
Confocal stacks often have z steps several times the pixel size. Following
nnU-Net, each level pools (and uses a 3-wide kernel) only along axes whose current
spacing is at most twice the finest one, so z is not pooled, and not convolved
across, until x and y have caught up; ``pool_schedule`` derives this from
``voxel_size`` (z, y, x spacing, e.g. the napari layer's scale).

Channel counts double with depth (``width, 2*width, ..., width * 2**depth``), as
in Ronneberger et al. 2015; we use padded 3x3 convolutions, so output and input
have the same size, and batch normalisation, which trains fast from small batches
and folds into the convolutions at inference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .config import UNetConfig


def pool_schedule(config: UNetConfig) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """Per level: the pooling factor (1 or 2) and convolution kernel (1 or 3) of each axis.

    Returns (pools, kernels): ``pools[i]`` is the down-sampling below level ``i``
    (``depth`` entries), ``kernels[i]`` the kernel of level ``i`` (``depth + 1``).
    2D models pool every axis at every level (the classic U-Net).
    """
    if config.spatial_dims == 2:
        return [(2, 2)] * config.depth, [(3, 3)] * (config.depth + 1)
    spacing = list(config.voxel_size)
    pools, kernels = [], []
    for level in range(config.depth + 1):
        fine = [s <= 2 * min(spacing) for s in spacing]
        kernels.append(tuple(3 if f else 1 for f in fine))
        if level < config.depth:
            pools.append(tuple(2 if f else 1 for f in fine))
            spacing = [s * p for s, p in zip(spacing, pools[-1])]
    return pools, kernels


_LAYERS = {
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ConvTranspose2d),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.ConvTranspose3d),
}


class ConvBlock(nn.Sequential):
    """Two (3x3 conv -> batch norm -> ReLU); keeps the spatial size.

    kernel: per-axis kernel size (3, or 1 along axes too coarse to convolve across).
    """

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, ...] = (3, 3)):
        conv, norm, _, _ = _LAYERS[len(kernel)]
        padding = tuple(k // 2 for k in kernel)
        super().__init__(
            conv(c_in, c_out, kernel, padding=padding, bias=False),
            norm(c_out),
            nn.ReLU(inplace=True),
            conv(c_out, c_out, kernel, padding=padding, bias=False),
            norm(c_out),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    """Max-pool by ``pool`` (2 per axis in 2D) then a ConvBlock."""

    def __init__(self, c_in: int, c_out: int, pool: tuple[int, ...] = (2, 2), kernel: tuple[int, ...] = (3, 3)):
        _, _, max_pool, _ = _LAYERS[len(pool)]
        super().__init__(max_pool(pool), ConvBlock(c_in, c_out, kernel))


class Up(nn.Module):
    """Transposed-conv up-sampling by ``pool``, concatenation with the skip, then a ConvBlock."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, pool: tuple[int, ...] = (2, 2),
                 kernel: tuple[int, ...] = (3, 3)):
        super().__init__()
        _, _, _, transposed = _LAYERS[len(pool)]
        self.up = transposed(c_in, c_out, pool, stride=pool)
        self.conv = ConvBlock(c_out + c_skip, c_out, kernel)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """2D or 3D U-Net; see the module docstring for the shape contract."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        pools, kernels = pool_schedule(config)
        chans = [config.width * 2**i for i in range(config.depth + 1)]
        self.stem = ConvBlock(config.in_channels, chans[0], kernels[0])
        self.downs = nn.ModuleList(Down(chans[i], chans[i + 1], pools[i], kernels[i + 1]) for i in range(config.depth))
        self.ups = nn.ModuleList(
            Up(chans[i + 1], chans[i], chans[i], pools[i], kernels[i]) for i in reversed(range(config.depth))
        )
        conv = _LAYERS[config.spatial_dims][0]
        self.head = conv(chans[0], config.n_outputs + config.n_split_outputs, 1)
        self.size_multiples = tuple(math.prod(p[a] for p in pools) for a in range(config.spatial_dims))

    @property
    def size_multiple(self) -> int:
        """The multiple along Y and X (the same for both)."""
        return self.size_multiples[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spatial = x.shape[2:]
        pads = [(-n) % m for n, m in zip(spatial, self.size_multiples)]
        if any(pads):
            # reflect needs pad < size; replicate covers tiny inputs
            mode = "reflect" if all(p < n for p, n in zip(pads, spatial)) else "replicate"
            x = F.pad(x, [v for p in reversed(pads) for v in (0, p)], mode=mode)
        x = self.stem(x)
        skips = []
        for down in self.downs:
            skips.append(x)
            x = down(x)
        for up in self.ups:
            x = up(x, skips.pop())
        return self.head(x)[(...,) + tuple(slice(0, n) for n in spatial)]


class ClassProbabilities(nn.Module):
    """A 2D U-Net as other programs run it: (N, in_channels, H, W) float32, normalised as in training,
    to class probabilities (N, n_outputs, H, W) (softmax; the split output is left out).

    Any H, W >= the network's multiple: the input is mirrored up to the next multiple and the output
    cropped back with shape arithmetic that TorchScript tracing and ONNX export keep symbolic, so
    the exported network takes every such size (tested against the U-Net).
    """

    def __init__(self, net: UNet):
        super().__init__()
        self.net = net
        self.n_outputs = int(net.config.n_outputs)
        self.multiple = int(net.size_multiple)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        x = F.pad(x, [0, (-w) % self.multiple, 0, (-h) % self.multiple], mode="reflect")
        logits = self.net(x)[:, : self.n_outputs, :h, :w]
        return torch.softmax(logits, dim=1)


def fuse_batchnorm(net: nn.Module) -> nn.Module:
    """A copy of ``net`` for inference, each batch norm folded into the convolution before it (its scale and
    shift made the convolution's weight and bias): the same output in eval mode, without the batch-norm
    passes, a sixth of a prediction's time on the CPU. Call it again after the weights change. Another
    network (not a ``UNet``) comes back as it is."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if not isinstance(net, UNet):
        return net
    fused = copy.deepcopy(net).eval()
    for block in fused.modules():
        if not isinstance(block, ConvBlock):
            continue
        layers, kept = list(block), []
        while layers:
            layer = layers.pop(0)
            if isinstance(layer, (nn.Conv2d, nn.Conv3d)) and layers and isinstance(layers[0], nn.modules.batchnorm._BatchNorm):
                layer = fuse_conv_bn_eval(layer, layers.pop(0))
            kept.append(layer)
        for name in list(block._modules):
            del block._modules[name]
        for i, layer in enumerate(kept):
            block.add_module(str(i), layer)
    return fused


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


def learned_split(model: SegmentationModel) -> bool:
    """Whether ``model`` splits objects with its learned output: it has one, painted objects taught it, and
    it has not been found to split them worse than the distance rule (``training.split_rule``: a model
    adopts its learned split once it matches its painted objects clearly better, and keeps it)."""
    return (model.config.split_head != "none" and bool(model.summary.get("object_pixels", 0))
            and model.summary.get("split_rule", "learned") == "learned")
