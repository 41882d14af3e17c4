"""Training from sparse annotations: ``fit()`` is a generator of progress events.

    model = None
    for event in fit(images, annotations, TrainConfig(time_budget=30)):
        if isinstance(event, Started):
            model = event.model          # trained in place: usable at any point
        elif isinstance(event, Step):
            print(event.step, event.loss)

Close the generator (or just stop iterating) at any yield and ``model`` holds the
weights so far, in eval mode, with its summary updated. The loss is
cross-entropy on annotated pixels only (value 0 is ignored), so a few strokes are
enough to train on. Fine-tuning a bundled generalist adds a term that keeps its
prediction where nothing is painted (``losses.prior_loss``), so a few strokes
correct it where they are without eroding it elsewhere; continuing one's own
model adds it too, more lightly (``TrainConfig.continue_prior_weight``).
"""

from __future__ import annotations

import copy
import functools
import math
import time
from dataclasses import asdict, replace

import numpy as np
import torch

from ...errors import UserInputError
from .. import convention, convert, layout
from ..model.config import UNetConfig
from ..model.device import (
    configure_cpu_threads,
    cpu_bf16,
    describe,
    is_out_of_memory,
    memory_format,
    pick_device,
)
from ..model.unet import SegmentationModel, learned_split
from ..prediction import size
from ..prediction.pipeline import preview_maps
from . import dataset, guard, painted, rounds, split_rule, validation
from .config import TrainConfig
from .events import Finished, Notice, Preview, Started, Step, Validation
from .optim import AdamW
from .step import patch_shape, recalibrate_batchnorm, sampler_for, train_mode, train_step


def fit(images, annotations, config: TrainConfig = None, *, model: SegmentationModel = None,
        unet_config: UNetConfig = None, objects=None, checked=None, preview_image=None, preview_window=None,
        preview_source=None, preview_tag=None, clock=time.perf_counter, axes: str | None = None,
        diameter="auto", stop=None):
    """Train a U-Net on (image, annotation) pairs; yields Started, Step, Preview, Validation, Finished.

    images: list of raw images (H, W), (H, W, C) or (C, H, W), any numeric dtype; for
        3D models (``unet_config.spatial_dims=3``) volumes (Z, Y, X), with channels first or last.
    axes: the images' layout, e.g. "YX", "YXC", "CYX" ("CZYX" for volumes); None: each read by the one
        rule (``layout.input_axes``), with the channels a model or ``unet_config`` declares. The CLI
        and the widget pass channels-first planes (``dataset.training_set``): "CYX".
    annotations: list of (H, W) (3D: (Z, H, W)) integer arrays in the label convention (``convention``).
    objects: None, or per image None or an integer image of painted whole objects (0 = none, one
        id per object; see ``painted``): foreground of their class, and what teaches the split output.
    checked: None, or per image None or a (H, W) bool mask of regions the user checked (fully
        annotated): held out of training and scored (Validation events, every
        ``config.preview_every`` seconds and at the end; see ``validation``). 2D models only.
    model: an existing model to fine-tune (its channels and classes must fit).
    unet_config: architecture for a new model (channels and classes are filled in).
    preview_image: an image to predict every ``config.preview_every`` seconds, channels first (C, Y, X)
        (a slab (C, Z, Y, X) for 3D models; ``pipeline.preview_pixels``).
    preview_window: (y0, y1, x0, x1), only this part of preview_image is predicted
        (e.g. what is on screen), so previews of huge images stay cheap.
    preview_source: optional callable, asked before each preview; returns None or a new
        (preview_image, preview_window, tag), e.g. when the user moved to another plane.
    preview_tag: the tag of the first preview image (returned in its Preview events).
    clock: seconds, for the time budget, previews and Step.elapsed; the trainer process passes
        one that leaves out the time it was paused (while the user moved the view).
    diameter: the objects' diameter in the images (px), "auto" or None (``dataset.training_scale``): a
        model that knows its diameter trains on the images rescaled to it (as it predicts them); a new
        model records it (from the painted objects when "auto").
    stop: None, or a callable asked before each step after the first; when it returns True, the round
        ends as if its budget were spent: scored and guarded like any other (the widget's Stop).
        Closing the generator instead ends it at once, with no score and no guard.
    """
    config = config or TrainConfig()
    images, annotations = list(images), list(annotations)
    if not images or len(images) != len(annotations):
        raise UserInputError(f"got {len(images)} image(s) and {len(annotations)} annotation(s); give one annotation per image")
    objects = _checked_objects(objects, annotations)
    annotations = [a if o is None else painted.merge_into_annotations(np.asarray(a), o)
                   for a, o in zip(annotations, objects)]
    annotations, objects, held = validation.hold_out(annotations, checked, objects)
    torch.manual_seed(config.seed)  # before building the net: its initial weights are seeded too
    # a model that has not trained yet counts as new (no diameter to keep, no earlier model to guard)
    new = model is None or not (model.summary.get("total_steps") or model.summary.get("card"))
    images, model = _prepare_model(images, annotations, model, unet_config, axes)
    scale, image_diameter = dataset.training_scale(model, images, objects, diameter, new)
    # its peak learning rate and prior weight: a new model, a continued one or a generalist's
    config = config.for_model(model.summary)
    cfg = model.config
    if held and cfg.spatial_dims == 3:
        raise UserInputError("checked regions (a validation score) work with 2D models only; leave them out for 3D")
    conversions = [convert.conversion_for(im, cfg) for im in images]
    prepared = [convert.normalize(im, c) for im, c in zip(images, conversions)]
    anns = [convention.check_annotations(a, im.shape[1:]) for a, im in zip(annotations, prepared)]
    dataset.check_training_set(anns, cfg.n_classes)
    objects_at_image_scale = objects
    prepared, anns, objects = dataset.rescale(prepared, anns, objects, scale)  # objects at the model's size
    spacing = np.asarray(cfg.voxel_size) / min(cfg.voxel_size) if cfg.spatial_dims == 3 else None
    targets = [None if o is None else painted.split_targets(o, a, cfg.split_head, spacing)
               for o, a in zip(objects, anns)]
    n_object_pixels = int(sum((o > 0).sum() for o in objects if o is not None))
    splits_now = learned_split(model)  # before this round (``split_rule.choose``)
    # previews split as the model did when the round began: a 2D model that does not split with its
    # learned output yet adopts it only at the round's end, if it wins (``split_rule``); 3D models always do
    show_split = splits_now or (n_object_pixels > 0 and cfg.split_head != "none" and cfg.spatial_dims != 2)
    if config.balanced_classes is None:
        config = replace(config, balanced_classes=n_object_pixels > 0)

    device = pick_device(config.device)
    if device.type == "cpu":
        configure_cpu_threads(config.threads)
    config = _with_device_defaults(config, device, model, prepared)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    sampler = sampler_for(config, cfg, prepared, anns, targets, rng, gen, device)
    net = model.net.to(device, memory_format=memory_format(device, cfg.spatial_dims))
    opt = AdamW(net.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    # the starting network, frozen: what unpainted pixels keep (losses.prior_loss)
    prior = copy.deepcopy(net).eval().requires_grad_(False) if config.prior_weight > 0 else None
    # the model as it was, for the regression guard at the end (``guard``): a model that continues only
    earlier = None if new or not config.guard else \
        SegmentationModel(copy.deepcopy(cfg), copy.deepcopy(net).eval(), copy.deepcopy(model.summary))
    prior_split = prior is not None and learned_split(model)

    n_annotated = int(sum((a > 0).sum() for a in anns))
    yield Started(model, describe(device), n_annotated)
    for notice in dict.fromkeys(c.notice for c in conversions if c.notice):
        yield Notice(f"training images: {notice}")
    if scale != 1.0:
        yield Notice(f"objects of {image_diameter:.0f} px: trained at {scale:.2f}x, the size the model learned "
                     f"({cfg.diameter:.0f} px)")
    start = clock()
    step, losses, next_preview, tag = 0, [], config.first_preview, preview_tag
    next_validation = config.first_preview
    train_mode(net, config.freeze_batchnorm)
    try:
        while not _done(step, clock() - start, config) and not (stop is not None and step and stop()):
            lr = _learning_rate(step, clock() - start, config)
            for group in opt.param_groups:
                group["lr"] = lr
            try:
                loss = train_step(net, opt, sampler, gen, config, device, cfg.n_outputs, prior, prior_split)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                config, message = _shrink_after_out_of_memory(config, device, opt)
                sampler.patch_size = patch_shape(config, cfg)
                yield Notice(message)
                continue
            step += 1
            losses.append(loss)
            elapsed = clock() - start
            px = step * config.batch_size * math.prod(sampler.patch_shape) / max(elapsed, 1e-9)
            yield Step(step, loss, elapsed, lr, px)
            if preview_source is not None and elapsed >= next_preview:
                preview_image, preview_window, tag = preview_source() or (preview_image, preview_window, tag)
            if preview_image is not None and elapsed >= next_preview:
                t0 = clock()
                if not config.freeze_batchnorm:
                    recalibrate_batchnorm(net, sampler, device, n_batches=2)  # half the final one: previews are transient
                maps = preview_maps(model, preview_image, preview_window, scale=scale)
                train_mode(net, config.freeze_batchnorm)
                cost = clock() - t0
                yield Preview(step, elapsed, maps.probabilities, preview_window, tag,
                              maps.split if show_split else None)
                # previews may take at most a third of the time, however large the image
                next_preview = clock() - start + max(config.preview_every, 2 * cost)
            if held and elapsed >= next_validation:
                t0 = clock()
                if not config.freeze_batchnorm:
                    recalibrate_batchnorm(net, sampler, device, n_batches=2)
                yield _validation_event(model, images, held, step, elapsed, scale)
                train_mode(net, config.freeze_batchnorm)
                next_validation = clock() - start + max(config.preview_every, 2 * (clock() - t0))
    finally:
        try:
            if not config.freeze_batchnorm:
                recalibrate_batchnorm(net, sampler, device)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
        net.eval()
        rounds.record(model, config, step, clock() - start, losses, len(images), n_annotated, device, n_object_pixels,
                      scale=round(scale, 4), image_diameter=image_diameter)
        if cfg.spatial_dims == 2:
            size.remember(model, images, image_diameter)
        # the round's model's prediction of a training plane, made once for the split rule and the guard
        maps_of = functools.cache(lambda k: preview_maps(model, images[k], None, scale=scale))
        if n_object_pixels and step:  # also when stopped early: the model is used as it is now
            _choose_split_rule(model, images, objects_at_image_scale, scale, splits_now, maps_of)
    if held:
        final = _validation_event(model, images, held, step, clock() - start, scale)
        model.summary["validation"] = {"dice": round(final.dice, 4), "f1": round(final.f1, 4),
                                       "pixels": final.pixels, "regions": len(held)}
        yield final
    verdict = None
    if earlier is not None:
        try:
            verdict = guard.compare(earlier, model, images, annotations, objects_at_image_scale, scale, maps_of)
        except Exception as exc:  # noqa: BLE001 - the guard never costs the round its model
            if not (is_out_of_memory(exc) or isinstance(exc, UserInputError)):
                raise
            yield Notice(f"the new model could not be compared with the earlier one ({exc}); it is made current")
        else:
            model.summary["rounds"][-1]["verdict"] = {"current": verdict.current, "candidate": verdict.candidate,
                                                      "what": verdict.what, "kept": verdict.keep_candidate}
    maps_of.cache_clear()
    yield Finished(model, model.summary, verdict, earlier)


def _choose_split_rule(model, images, objects, scale, splits_now, maps_of) -> None:
    """Record in ``model``'s summary the rule that splits its painted objects better (``split_rule``)."""
    try:
        choice = split_rule.choose(model, images, objects, scale, splits_now, maps_of)
    except Exception as exc:  # out of memory: the model keeps the rule it had
        if not is_out_of_memory(exc):
            raise
        return
    if choice is not None:
        model.summary["split_rule"] = choice.rule
        model.summary["rounds"][-1]["split_rule"] = {"rule": choice.rule, "learned": choice.learned,
                                                     "distance": choice.distance}


def _validation_event(model, images, held, step, elapsed, scale=1.0) -> Validation:
    found = validation.score(model, images, held, scale=scale)
    return Validation(step, elapsed, found.dice, found.f1, found.pixels)


def _checked_objects(objects, annotations) -> list:
    """Per image, its painted objects checked (int32 of the annotations' shape) or None."""
    if objects is None:
        return [None] * len(annotations)
    objects = list(objects)
    if len(objects) != len(annotations):
        raise UserInputError(f"got {len(objects)} object image(s) for {len(annotations)} image(s); give one per "
                             "image (or none)")
    return [None if o is None else painted.check_objects(o, np.shape(a)) for o, a in zip(objects, annotations)]




def train(images, annotations, config: TrainConfig = None, **kwargs) -> SegmentationModel:
    """Run ``fit`` to the end and return the model (for scripts)."""
    for event in fit(images, annotations, config, **kwargs):
        if isinstance(event, Finished):
            return event.model
    raise RuntimeError("training ended without a result")


def _prepare_model(images, annotations, model, unet_config, axes) -> tuple[list, SegmentationModel]:
    """The images as network inputs, channels first (``dataset.network_inputs``), and a new model sized
    to them, or the given one after checking it fits."""
    dims = model.config.spatial_dims if model is not None else (unet_config.spatial_dims if unet_config else 2)
    declared = model.config if model is not None else unet_config
    chw, channel_axis = dataset.network_inputs(images, axes, declared, "ZYX" if dims == 3 else "YX")
    if model is not None:
        for c in chw:
            layout.check_channels(c.shape[0], model.config)
        return chw, model
    checked = [convention.check_annotations(a, c.shape[1:]) for a, c in zip(annotations, chw)]
    n_classes = dataset.check_training_set(checked, None)
    base = asdict(unet_config) if unet_config else {}
    base.update(in_channels=chw[0].shape[0], n_classes=n_classes, channel_axis=channel_axis)
    return chw, SegmentationModel.new(UNetConfig(**base))


def _with_device_defaults(config: TrainConfig, device, model, images) -> TrainConfig:
    """Fill batch and patch size left as None with what suits the device (and, for volumes,
    the patch depth from the voxel size, on the network's Z multiple)."""
    gpu = device.type != "cpu"
    crf = config.crf_weight if config.crf_weight is not None else (3.0 if model.config.spatial_dims == 2 else 0.0)
    config = replace(config, crf_weight=crf)
    if model.config.spatial_dims == 2:
        # bf16 CPUs (AMX) step twice as fast: a batch of 8 keeps the step count the CPU defaults
        # were tuned for (train fields: Dice after 10 s 0.955 -> 0.954, after 30 s 0.964 -> 0.967)
        cpu_batch = 8 if cpu_bf16() else 4
        return replace(config, batch_size=config.batch_size or (32 if gpu else cpu_batch),
                       patch_size=config.patch_size or (128 if gpu else 96))
    patch = config.patch_size or (128 if gpu else 64)
    depth = config.patch_depth
    if depth is None:
        z, y, _ = model.config.voxel_size
        deepest = max(im.shape[1] for im in images)
        depth = min(round(patch * y / z), 32 if gpu else 16, deepest)
    mz = model.net.size_multiples[0]
    depth = max(mz, -(-depth // mz) * mz)
    return replace(config, batch_size=config.batch_size or (8 if gpu else 2), patch_size=patch, patch_depth=depth)




def _done(step: int, elapsed: float, config: TrainConfig) -> bool:
    if config.steps is not None and step >= config.steps:
        return True
    return config.time_budget is not None and elapsed >= config.time_budget


def _learning_rate(step: int, elapsed: float, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay over the run (by steps or by time, whichever is further)."""
    progress = 0.0
    if config.steps:
        progress = step / config.steps
    if config.time_budget:
        progress = max(progress, elapsed / config.time_budget)
    warm = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.learning_rate * warm * max(cosine, 0.05)


def _shrink_after_out_of_memory(config: TrainConfig, device, opt):
    """Halve the batch (then the patch) after running out of memory; give up at 1 x 32^2."""
    opt.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if config.batch_size > 1:
        new = replace(config, batch_size=config.batch_size // 2)
    elif config.patch_size > 32:
        new = replace(config, patch_size=max(32, config.patch_size // 2 // 16 * 16))
    else:
        fix = "close other programs" + (" or train on the CPU (--device cpu)" if device.type != "cpu" else "")
        raise UserInputError(f"out of memory on {describe(device)} even with one 32x32 patch; {fix}")
    return new, (f"out of memory on {describe(device)}: continuing with {new.batch_size} patch(es) of "
                 f"{new.patch_size}x{new.patch_size} (was {config.batch_size} of {config.patch_size})")





