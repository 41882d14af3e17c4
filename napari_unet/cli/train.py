"""``napari-unet train``: images and annotations from files, ``dataset.training_set``, ``train.fit``.

A trained model is never lost: the output's folder is checked before training starts; Ctrl-C
and SIGTERM stop training as Stop does and save the model so far; a save that fails (a full disk,
a folder made read-only meanwhile) writes the model to the autosave folder instead and says where.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

from ..errors import UserInputError
from .progress import FitProgress, log, time_budget


def run(args) -> int:
    from ..engine import files
    from ..engine.model import modelfile
    from ..engine.model.config import UNetConfig
    from ..engine.training import rounds, train

    if len(args.images) != len(args.labels):
        raise UserInputError(f"got {len(args.images)} image(s) but {len(args.labels)} --labels; give one per image")
    if args.objects and len(args.objects) != len(args.images):
        raise UserInputError(f"got {len(args.images)} image(s) but {len(args.objects)} --objects; give one per image")
    if args.validation and len(args.validation) != len(args.images):
        raise UserInputError(f"got {len(args.images)} image(s) but {len(args.validation)} --validation masks; "
                             "give one per image")
    out = Path(args.out)
    if out.suffix.lower() != ".pt":
        raise UserInputError(f"napari-unet model files end in .pt; give --out {out.with_suffix('.pt').name}")
    files.check_outputs([*args.images, *args.labels, *(args.objects or []), *(args.validation or []), args.init],
                        [("--out", out)])
    files.check_writable_folder(out)
    init = modelfile.load_model(args.init) if args.init and args.init != "auto" else None
    three_d = args.three_d or bool(init and init.config.spatial_dims == 3)
    if args.voxel_size and not three_d:
        raise UserInputError("--voxel-size is for 3D models; add --3d")
    if init is not None and args.three_d and init.config.spatial_dims != 3:
        raise UserInputError("--init is a 2D model; leave out --3d to fine-tune it, or train a new 3D model")
    found = training_set(args, "ZYX" if three_d else "YX", init)
    diameter = args.diameter
    if args.init == "auto":  # the bundled model that agrees with the strokes, else a new network
        from ..engine.training.start import choose_start

        if three_d:
            raise UserInputError("--init auto chooses among the 2D bundled models; leave out --3d or give a model")
        choice = choose_start(found.images, found.annotations, found.objects)
        log(choice.reason)
        init = choice.model
        if diameter == "auto" and choice.diameter is not None:
            diameter = choice.diameter  # the chosen model's own estimate, not measured a second time
    config = train.TrainConfig(steps=args.steps, time_budget=time_budget(args), device=args.device, seed=args.seed,
                               batch_size=args.batch_size, patch_size=args.patch_size, patch_depth=args.patch_depth,
                               threads=args.threads)
    if args.prior_weight is not None:  # whichever model --init gives: a generalist or one's own
        config = replace(config, prior_weight=args.prior_weight, continue_prior_weight=args.prior_weight)
    unet = UNetConfig(depth=args.depth, width=args.width, class_names=args.class_names or [],
                      channel_axis=found.layout, spatial_dims=3 if three_d else 2,
                      voxel_size=tuple(args.voxel_size or (1.0, 1.0, 1.0)), split_head=args.split_head)
    progress = FitProgress()
    try:
        with _sigterm_as_interrupt():
            model = progress.run(train.fit(found.images, found.annotations, config, model=init, unet_config=unet,
                                           objects=found.objects, checked=checked_masks(args, found), axes=found.axes,
                                           diameter=diameter))
    except KeyboardInterrupt:
        if progress.model is None:
            raise
        progress.close()
        steps = progress.model.summary.get("total_steps", 0)
        saved = save(progress.model, out, args.class_names if init is None else None)
        log(f"interrupted after {steps} steps: the model so far is saved in {saved}")
        return 130
    warning = rounds.round_warning(model)
    if warning:
        log(f"napari-unet: warning: {warning}")
    note = rounds.split_note(model)
    if note:
        log(note)
    verdict = progress.finished.verdict if progress.finished is not None else None
    if args.keep_better and verdict is not None and not verdict.keep_candidate:
        earlier = progress.finished.earlier
        earlier.summary["kept_earlier"] = {"current": verdict.current, "candidate": verdict.candidate,
                                           "what": verdict.what, "round": model.summary["rounds"][-1]}
        log(f"kept the earlier model (--keep-better): {verdict.what} {verdict.current:.3f} against "
            f"{verdict.candidate:.3f} for this round's")
        model = earlier
    else:
        model.summary.pop("kept_earlier", None)
    saved = save(model, out, args.class_names if init is None else None)
    return 0 if saved == out else 2


def save(model, out: Path, class_names=None) -> Path:
    """Save to ``out``; if that fails, to the autosave folder; return where it went (never raises
    for a failed write: the model is the one thing a long training run must not lose)."""
    from ..engine.disk import autosave
    from ..engine.model import modelfile

    if class_names:
        model.config.class_names = list(class_names)[: model.config.n_classes]
    try:
        modelfile.save_model(model, out)
        log(f"saved {out}")
        return out
    except UserInputError as exc:
        fallback = autosave.cache_root() / "models" / f"{out.stem[:100]}-{time.strftime('%Y%m%d-%H%M%S')}.pt"
        try:
            fallback.parent.mkdir(parents=True, exist_ok=True)
            modelfile.save_model(model, fallback)
        except (UserInputError, OSError) as second:
            raise UserInputError(f"{exc}; saving it in {fallback.parent} failed too ({second}); free some space "
                                 "and train again") from None
        log(f"napari-unet: error: {exc}; the model is saved in {fallback} instead")
        return fallback


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a job scheduler's stop) ends training as Ctrl-C does: the model so far is saved."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def checked_masks(args, found):
    """--validation: per image a mask of its checked regions (nonzero), held out and scored."""
    from ..engine.disk import io

    if not args.validation:
        return None
    if len(found.images) != len(args.images) or any(total > 1 for _, total in found.annotated):
        raise UserInputError("--validation works with single 2D images; leave it out for stacks")
    masks = [io.read_labels(path) > 0 for path in args.validation]
    for path, mask, ann in zip(args.validation, masks, found.annotations):
        if mask.shape != ann.shape:
            raise UserInputError(f"--validation {path} has shape {mask.shape}, its image {ann.shape}; give a mask "
                                 "of the image's shape")
    return masks


def training_set(args, spatial: str, init):
    """The annotated planes (volumes, with ``spatial="ZYX"``) of all training images (``pipeline``).

    Axes: ``--axes`` (or the hidden ``--channel-axis``), else the one rule (``layout.guess_axes``),
    with the channel count of the ``--init`` model when there is one.
    """
    from ..engine import layout as ax
    from ..engine.disk import io
    from ..engine.training import dataset

    sources = []
    for i, (image_path, label_path) in enumerate(zip(args.images, args.labels)):
        image, ann = io.read_image(image_path), io.read_labels(label_path)
        objects = io.read_labels(args.objects[i]) if args.objects else None
        if args.axes:
            axes = args.axes
        elif args.channel_axis:
            axes = {"none": "YX", "last": "YXC", "first": "CYX"}[args.channel_axis]
        else:
            axes = ax.guess_axes(image.shape, init.config.in_channels if init else None)
        sources.append((image, ann, ax.check_axes(axes, image.shape), objects))
    found = dataset.training_set(sources, spatial, init.config.n_classes if init else None)
    kind = "plane" if spatial == "YX" else "volume"
    for path, (annotated, total) in zip(args.images, found.annotated):
        if total > 1:
            log(f"{Path(path).name}: {annotated} annotated {kind}(s) of {total}")
    return found
