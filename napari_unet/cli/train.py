"""``napari-unet train``: images and annotations from files, ``pipeline.training_set``, ``train.fit``."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserInputError
from .progress import log, run_fit


def run(args) -> int:
    from ..engine import io, train
    from ..engine.config import UNetConfig

    if len(args.images) != len(args.labels):
        raise UserInputError(f"got {len(args.images)} image(s) but {len(args.labels)} --labels; give one per image")
    out = Path(args.out)
    if not out.parent.exists():
        raise UserInputError(f"folder {out.parent} for --out does not exist; create it first")
    init = io.load_model(args.init) if args.init else None
    three_d = args.three_d or bool(init and init.config.spatial_dims == 3)
    if args.voxel_size and not three_d:
        raise UserInputError("--voxel-size is for 3D models; add --3d")
    if args.voxel_size and min(args.voxel_size) <= 0:
        raise UserInputError(f"--voxel-size must be positive, got {' '.join(map(str, args.voxel_size))}")
    if init is not None and args.three_d and init.config.spatial_dims != 3:
        raise UserInputError("--init is a 2D model; leave out --3d to fine-tune it, or train a new 3D model")
    found = training_set(args, "ZYX" if three_d else "YX", init)
    budget = args.time_budget if args.time_budget is not None else (None if args.steps else 30.0)
    config = train.TrainConfig(steps=args.steps, time_budget=budget, device=args.device, seed=args.seed,
                               batch_size=args.batch_size, patch_size=args.patch_size, patch_depth=args.patch_depth)
    unet = UNetConfig(depth=args.depth, width=args.width, class_names=args.class_names or [],
                      channel_axis=found.layout, spatial_dims=3 if three_d else 2,
                      voxel_size=tuple(args.voxel_size or (1.0, 1.0, 1.0)))
    model = run_fit(train.fit(found.images, found.annotations, config, model=init, unet_config=unet))
    if args.class_names and init is None:
        model.config.class_names = list(args.class_names)[: model.config.n_classes]
    io.save_model(model, out)
    log(f"saved {out}")
    return 0


def training_set(args, spatial: str, init):
    """The annotated planes (volumes, with ``spatial="ZYX"``) of all training images (``pipeline``).

    Axes: ``--axes`` (or the hidden ``--channel-axis``), else the one rule (``layout.guess_axes``),
    with the channel count of the ``--init`` model when there is one.
    """
    from ..engine import io, pipeline
    from ..engine import layout as ax

    sources = []
    for image_path, label_path in zip(args.images, args.labels):
        image, ann = io.read_image(image_path), io.read_image(label_path)
        if args.axes:
            axes = args.axes
        elif args.channel_axis:
            axes = {"none": "YX", "last": "YXC", "first": "CYX"}[args.channel_axis]
        else:
            axes = ax.guess_axes(image.shape, init.config.in_channels if init else None)
        sources.append((image, ann, ax.check_axes(axes, image.shape)))
    found = pipeline.training_set(sources, spatial, init.config.n_classes if init else None)
    kind = "plane" if spatial == "YX" else "volume"
    for path, (annotated, total) in zip(args.images, found.annotated):
        if total > 1:
            log(f"{Path(path).name}: {annotated} annotated {kind}(s) of {total}")
    return found
