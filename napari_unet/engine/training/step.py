"""One optimisation step of ``train.fit``: a batch of patches (``sampling``), its augmentation, the losses
and the update; and the batch norm's modes and statistics."""

from __future__ import annotations

import math

import torch

from ..model.config import UNetConfig
from ..model.device import autocast, memory_format
from . import augment, losses, sampling
from .config import TrainConfig

AGREE_SPLIT = 0.15  # the split output within this of its target agrees (``TrainConfig.agree_weight``)


def patch_shape(config: TrainConfig, cfg: UNetConfig) -> tuple[int, ...]:
    """Training patch shape: (P, P) for planes, (depth, P, P) for volumes."""
    if cfg.spatial_dims == 2:
        return (config.patch_size,) * 2
    return (config.patch_depth, config.patch_size, config.patch_size)


def sampler_for(config: TrainConfig, cfg: UNetConfig, images, annotations, targets, rng, gen, device):
    """Planes: patches cut and warped on the device, a batch at a time (``sampling.DeviceSampler``);
    volumes: cut and turned on the host (``sampling.PatchSampler``), warped on the device."""
    shape = patch_shape(config, cfg)
    anywhere = config.prior_patches if config.prior_weight > 0 else 0.0  # only the prior term teaches there
    if cfg.spatial_dims == 3 or not config.device_sampling:
        return sampling.PatchSampler(images, annotations, shape, rng, targets, config.sample_by_stroke, anywhere)
    affine = {"scale": affine_scale(config)} if config.augment else None
    return sampling.DeviceSampler(images, annotations, shape, rng, device, gen, targets, config.sample_by_stroke,
                                  affine, anywhere)

def affine_scale(config: TrainConfig) -> tuple[float, float]:
    wide = config.augment_strength == "wide" and "scale" not in config.augment_without
    return (0.6, 1.6) if wide else (0.85, 1.2)

def train_step(net, opt, sampler, gen, config: TrainConfig, device, n_classes: int, prior=None,
                prior_split: bool = False) -> float:
    """One optimisation step; n_classes: the class outputs (n_outputs), before the split output.
    prior: None or the frozen starting network (``losses.prior_loss``); prior_split: keep its split output too."""
    # Sampling ahead in a thread does not speed up a GPU: the loop is bound by kernel launches
    # (H100, 32 x 128^2: 41 steps/s with prefetching against 44 without; the network alone 121)
    if isinstance(sampler, sampling.DeviceSampler):  # cut, turned and warped on the device already
        x, ann, target = sampler.sample(config.batch_size)
    else:
        x_np, ann_np, target_np = sampler.sample(config.batch_size)
        x = torch.from_numpy(x_np).to(device)
        ann = torch.from_numpy(ann_np).to(device).float()
        labels = ann if target_np is None else torch.stack([ann, torch.from_numpy(target_np).to(device)], 1)
        if config.augment:
            x, labels = augment.random_affine(x, labels, gen, scale=affine_scale(config))
        ann, target = (labels, None) if target_np is None else (labels[:, 0], labels[:, 1])
    wide = config.augment_strength == "wide"
    if config.augment and config.intensity_augment:
        x = (augment.random_appearance(x, gen, without=config.augment_without) if wide
             else augment.random_intensity(x, gen))
    x = x.contiguous(memory_format=memory_format(device, x.ndim - 2))
    with autocast(device):
        logits = net(x)
    prior_logits, weights, split_weights = None, None, None
    if prior is not None:
        with torch.no_grad(), autocast(device):
            prior_logits = prior(x)
        if config.agree_weight != 1.0:  # what the starting model already predicts weighs less than a correction
            agrees = (prior_logits[:, :n_classes].argmax(1) + 1 == ann) & (ann > 0)
            weights = torch.where(agrees, config.agree_weight, 1.0)
            if target is not None and prior_logits.shape[1] > n_classes:
                close = (torch.sigmoid(prior_logits[:, n_classes].float()) - (target - 1)).abs() < AGREE_SPLIT
                split_weights = torch.where(close, config.agree_weight, 1.0)
    loss = losses.sparse_cross_entropy(logits[:, :n_classes], ann, config.balanced_classes, weights)
    if config.crf_weight > 0:
        probs = torch.softmax(logits[:, :n_classes].float(), dim=1)
        loss = loss + config.crf_weight * losses.gated_crf_loss(probs, x.float(), sigma_intensity=config.crf_sigma)
    if target is not None and logits.shape[1] > n_classes:
        loss = loss + config.split_weight * losses.split_loss(logits[:, n_classes], target, split_weights)
    if prior is not None:
        loss = loss + config.prior_weight * losses.prior_loss(logits, prior_logits, ann, n_classes, target,
                                                              prior_split)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return float(loss.detach())  # a sync point, once per step, for the progress event

def train_mode(net, freeze_batchnorm: bool) -> None:
    """The network in training mode; with ``freeze_batchnorm`` its batch-norm layers stay in eval mode
    (their running statistics are used and kept, their scale and shift still learn)."""
    net.train()
    if freeze_batchnorm:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()

@torch.no_grad()
def recalibrate_batchnorm(net, sampler, device, n_batches: int = 4, batch_size: int = 4, size: int | None = None) -> None:
    """Recompute batch-norm running statistics from random crops of the training images.

    Running averages lag behind weights that change fast (high learning rate, few
    steps), and patches centred on annotations over-represent objects; both make
    eval-mode predictions drift. A few forward passes over uniformly placed crops
    with cumulative averaging (momentum None) fix that. At most ``n_batches`` batches, and no more
    than cover the training planes about twice over, in crops no larger than they are (a 256 x 384
    plane: one batch of four 256^2 crops, not four batches): the statistics are averages over the images.
    """
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was_training = net.training
    net.train()
    volumes = sampler.images[0].ndim == 4
    size = size or (96 if volumes else 256)  # 3D: 24 x 96^2 voxels, like 2D's 256^2 in cost
    batch_size = 2 if volumes else batch_size
    if not volumes:  # no crop larger than the planes (a 64^2 plane: 64^2 crops), no more than cover them twice
        size = min(size, 16 * math.ceil(max(max(im.shape[1:]) for im in sampler.images) / 16))
        covered = 2 * sum(math.prod(im.shape[1:]) for im in sampler.images)
        n_batches = max(1, min(n_batches, math.ceil(covered / (batch_size * size * size))))
    for _ in range(n_batches):
        x = torch.from_numpy(sampler.sample_uniform(batch_size, size)).to(device)
        with autocast(device):
            net(x.contiguous(memory_format=memory_format(device, x.ndim - 2)))
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    net.train(was_training)
