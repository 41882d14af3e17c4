"""Command line: ``napari-unet train | predict | demo``, a thin layer over the engine.

Bad input ends with one line on stderr and exit status 2, never a traceback
(set NAPARI_UNET_DEBUG=1 to see one). Progress goes to stderr, results to files.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from .errors import UserInputError

LABEL_CONVENTION = """\
label convention (the same in napari, the CLI and files):
  annotations (--labels): 0 = not annotated (ignored), 1 = background,
                          2 = first object class, 3 = second class, ...
  predictions:            0 = background; semantic: k = k-th object class
                          (annotation value k+1), so one class gives a 0/1 mask;
                          --instances: each object its own id 1..N
"""

TRAIN_HELP = f"""\
Train a U-Net from sparse annotations (scribbles) and save it as one model file.

Only annotated pixels count, so a few strokes of background (1) and a few dabs
inside objects (2) per image are enough to start. Training stops at the time
budget or the step count, whichever comes first, and saves the model.

example:
  napari-unet train cells.tif --labels cells_scribbles.tif --out model.pt --time-budget 60

{LABEL_CONVENTION}"""

PREDICT_HELP = f"""\
Segment images with a trained model: 2D images, z-stacks and time series
(plane by plane), and images larger than memory (zarr in, zarr out, read and
written block by block).

--out FILE writes one label image (one input image) with the input's shape
without channels: .tif (uint16, default), .png (2D, 8/16-bit), .npy or .zarr.
--out-dir DIR writes IMAGE_STEM_masks.tif for each image.
With --instances, touching objects are split and each gets its own id; with
several classes, IMAGE_STEM_classes.csv lists each object's class.

examples:
  napari-unet predict model.pt a.tif b.tif --out-dir masks/ --instances
  napari-unet predict model.pt stack.tif --axes ZYX --out stack_masks.tif
  napari-unet predict model.pt huge.zarr --out huge_masks.zarr
  napari-unet predict model.pt huge.zarr --out huge_masks.zarr --dask-scheduler tcp://10.0.0.5:8786

{LABEL_CONVENTION}"""


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="napari-unet", formatter_class=fmt,
        description="Human-in-the-loop U-Net segmentation (engine of the napari plugin).",
        epilog=LABEL_CONVENTION,
    )
    parser.add_argument("--version", action="version", version=f"napari-unet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,demo}")

    t = sub.add_parser("train", help="train a model from images and sparse annotations",
                       description=TRAIN_HELP, formatter_class=fmt)
    t.add_argument("images", nargs="+", metavar="IMAGE", help="training images (TIFF, PNG, NPY, zarr, ...)")
    t.add_argument("--labels", nargs="+", required=True, metavar="LABELS",
                   help="one annotation image per IMAGE, same order and shape")
    t.add_argument("--out", required=True, metavar="MODEL.pt", help="where to save the model")
    t.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop after this many seconds (default 30 when --steps is not given)")
    t.add_argument("--steps", type=int, metavar="N", help="stop after N optimisation steps")
    t.add_argument("--init", metavar="MODEL.pt", help="fine-tune this model instead of starting fresh")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to train (auto: CUDA, then MPS, then CPU)")
    t.add_argument("--seed", type=int, default=0, help="random seed (runs with --steps on CPU repeat exactly)")
    t.add_argument("--class-names", nargs="+", metavar="NAME", help="names of the object classes 2, 3, ...")
    t.add_argument("--axes", metavar="AXES",
                   help="layout of the images, letters from TZCYX, e.g. YX, YXC, CYX, ZYX, TZCYX "
                        "(default: guessed: (Y,X,3) = YXC, (C<=4,Y,X) = CYX, other 3D = ZYX); "
                        "stacks train on their annotated planes")
    t.add_argument("--channel-axis", choices=["none", "last", "first"], help=argparse.SUPPRESS)
    t.add_argument("--batch-size", type=int, help="patches per step (default: 4 on the CPU, 32 on a GPU)")
    t.add_argument("--patch-size", type=int, help="patch side in pixels (default: 96 on the CPU, 128 on a GPU)")
    t.add_argument("--depth", type=int, default=3, help="U-Net levels below the first (new models, default 3)")
    t.add_argument("--width", type=int, default=16, help="channels of the first level (new models, default 16)")
    t.add_argument("--3d", dest="three_d", action="store_true",
                   help="train a 3D U-Net on 3D patches around the annotations of volumes (Z axis needed; "
                        "default: a 2D U-Net on the annotated planes)")
    t.add_argument("--voxel-size", type=float, nargs=3, metavar=("Z", "Y", "X"),
                   help="with --3d: voxel spacing, e.g. 2 0.5 0.5; sets the anisotropic pooling (default 1 1 1)")
    t.add_argument("--patch-depth", type=int, help="with --3d: planes per patch (default: from --voxel-size, at most 16 on the CPU)")
    t.set_defaults(func=run_train)

    p = sub.add_parser("predict", help="segment images with a trained model",
                       description=PREDICT_HELP, formatter_class=fmt)
    p.add_argument("model", metavar="MODEL.pt")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="FILE", help="output label image (one IMAGE only)")
    where.add_argument("--out-dir", metavar="DIR", help="folder for IMAGE_STEM_masks.tif files")
    p.add_argument("--instances", action="store_true", help="one id per object instead of class values")
    p.add_argument("--probabilities", metavar="FILE",
                   help="also save class probabilities, float32 (classes+1, Y, X), channel 0 = background (one IMAGE only)")
    p.add_argument("--min-size", type=int, default=30, help="smallest object kept with --instances, in pixels (default 30)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--tile-size", type=int, default=512, help="tile side in pixels (default 512)")
    p.add_argument("--axes", metavar="AXES",
                   help="layout of the images, letters from TZCYX, e.g. ZYX, TYX, YXC, CZYX "
                        "(default: guessed from the shape and the model's channels)")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the chunked prediction on this dask.distributed scheduler "
                        "(e.g. tcp://10.0.0.5:8786); needs --out OUT.zarr")
    p.set_defaults(func=run_predict)

    d = sub.add_parser("demo", help="open napari with the nuclei sample and the U-Net widget",
                       description="Open napari with the bundled nuclei sample, its scribbles and the U-Net "
                                   "widget: press Train. With --headless, train on the scribbles and write "
                                   "the model and masks instead.", formatter_class=fmt)
    d.add_argument("--headless", action="store_true", help="no viewer: train, predict and write files")
    d.add_argument("--out-dir", default="napari-unet-demo", help="where --headless writes the model and masks")
    d.add_argument("--time-budget", type=float, default=30.0, metavar="SECONDS")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    d.set_defaults(func=run_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserInputError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except MemoryError:
        return _fail("out of memory; use a smaller --tile-size or --batch-size, or the GPU", 1)
    except Exception as exc:  # an unexpected failure: one line, traceback on request
        if os.environ.get("NAPARI_UNET_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (set NAPARI_UNET_DEBUG=1 for details)", 1)


def _fail(message: str, code: int = 2) -> int:
    print(f"napari-unet: error: {message}", file=sys.stderr)
    return code


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_train(args) -> int:
    from . import io, train
    from .model import UNetConfig

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
    images, labels, layout = _training_planes(args, "ZYX" if three_d else "YX")
    budget = args.time_budget if args.time_budget is not None else (None if args.steps else 30.0)
    config = train.TrainConfig(steps=args.steps, time_budget=budget, device=args.device, seed=args.seed,
                               batch_size=args.batch_size, patch_size=args.patch_size, patch_depth=args.patch_depth)
    unet = UNetConfig(depth=args.depth, width=args.width, class_names=args.class_names or [],
                      channel_axis=layout, spatial_dims=3 if three_d else 2,
                      voxel_size=tuple(args.voxel_size or (1.0, 1.0, 1.0)))
    model = _run_fit(train.fit(images, labels, config, model=init, unet_config=unet))
    if args.class_names and init is None:
        model.config.class_names = list(args.class_names)[: model.config.n_classes]
    io.save_model(model, out)
    _log(f"saved {out}")
    return 0


def _training_planes(args, spatial: str = "YX"):
    """All annotated planes (volumes, with ``spatial="ZYX"``) of all training images, and
    their channel layout.

    2D images are used whole; stacks (see --axes) contribute the planes with annotations.
    """
    from . import axes as ax
    from . import io

    images, labels, layouts = [], [], set()
    for image_path, label_path in zip(args.images, args.labels):
        image, ann = io.read_image(image_path), io.read_image(label_path)
        if args.axes:
            axes = ax.check_axes(args.axes, image.shape)
        elif args.channel_axis:
            axes = {"none": "YX", "last": "YXC", "first": "CYX"}[args.channel_axis]
            axes = ax.check_axes(axes, image.shape)
        else:
            axes = ax.guess_axes(image.shape)
            if spatial == "ZYX" and "Z" not in axes:  # a small (Z<=4, Y, X) volume, not channels
                axes = {"CYX": "ZYX", "YXC": "ZYX"}.get(axes, axes)
        layouts.add(ax.layout_of(axes))
        if ax.is_single_plane(axes, spatial):
            images.append(np.asarray(ax.plane(image, axes, (), ax.layout_of(axes), spatial)))
            labels.append(ann)
        else:
            planes, anns = ax.annotated_planes(image, ann, axes, ax.layout_of(axes), spatial)
            images += planes
            labels += anns
            kind = "plane" if spatial == "YX" else "volume"
            total = len(ax.plane_indices(image.shape, axes, spatial))
            _log(f"{Path(image_path).name}: {len(planes)} annotated {kind}(s) of {total}")
    if len(layouts) > 1:
        raise UserInputError("the training images have different channel layouts; give images of one kind")
    if not images:
        raise UserInputError("no annotations found in any plane; paint background (label 1) and objects (label 2) first")
    return images, labels, layouts.pop()


def _run_fit(events):
    """Iterate training events, printing progress about once a second; return the model."""
    from . import train

    model, last = None, 0.0
    for event in events:
        if isinstance(event, train.Started):
            model = event.model
            _log(f"training on {event.device}, {event.annotated_pixels} annotated pixels")
        elif isinstance(event, train.Notice):
            _log(event.message)
        elif isinstance(event, train.Step) and event.elapsed - last >= 1.0:
            last = event.elapsed
            _log(f"step {event.step:5d}  loss {event.loss:.4f}  {event.elapsed:5.1f} s  "
                 f"{event.pixels_per_second / 1e6:.2f} Mpx/s")
        elif isinstance(event, train.Finished):
            r = event.summary["rounds"][-1]
            loss = f"{r['final_loss']:.4f}" if r["final_loss"] is not None else "n/a"
            _log(f"done: {r['steps']} steps in {r['seconds']:.1f} s, loss {loss}")
    return model


def run_predict(args) -> int:
    from . import io

    if args.out and len(args.images) > 1:
        raise UserInputError("--out takes one image; use --out-dir for several")
    if args.probabilities and len(args.images) > 1:
        raise UserInputError("--probabilities takes one image; predict images one at a time")
    if args.out_dir:
        Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    model = io.load_model(args.model, device=args.device)
    for path in args.images:
        out = Path(args.out) if args.out else Path(args.out_dir) / f"{Path(path).stem}_masks.tif"
        predict_file(model, Path(path), out, args)
    return 0


def predict_file(model, path: Path, out: Path, args) -> None:
    """Predict one image file (2D or a stack) and write its mask (and probabilities / classes if asked)."""
    from . import axes as ax
    from . import io

    image = io.read_image(path, lazy=True)
    shape = tuple(image.shape)
    axes = ax.check_axes(args.axes, shape) if args.axes else ax.guess_axes(shape, model.config.in_channels)
    start = time.perf_counter()
    if args.probabilities:
        labels = _predict_with_probabilities(model, image, axes, args)
    elif args.dask_scheduler:
        labels = _predict_on_cluster(model, image, axes, out, args)
    else:
        labels = _predict_locally(model, image, axes, out, path, args)
    if labels is not None:
        io.write_mask(out, labels)
    _log(f"{path.name}: done in {time.perf_counter() - start:.1f} s -> {out}")


def _predict_locally(model, image, axes, out: Path, path: Path, args):
    """Block by block; straight into a zarr store for .zarr outputs (returns None), else in memory."""
    from . import axes as ax
    from . import io

    shape = ax.labels_shape(image.shape, axes)
    dtype = np.uint32 if args.instances else np.uint8
    if out.suffix.lower() == ".zarr":
        with io.open_label_store(out, shape, dtype) as store:
            _run_stack(model, image, axes, store, path, out, args)
        return None
    target = np.zeros(shape, dtype)
    _run_stack(model, image, axes, target, path, out, args)
    return target


def _run_stack(model, image, axes, target, path: Path, out: Path, args) -> None:
    from . import chunked, predict

    last = 0.0
    events = chunked.iter_predict_stack(model, image, axes, target, instances=args.instances,
                                        min_size=args.min_size, tile_size=args.tile_size)
    for event in events:
        now = time.perf_counter()
        if isinstance(event, predict.TileProgress) and event.total > 1 and now - last > 1.0:
            last = now
            _log(f"{path.name}: tile {event.done}/{event.total}")
        elif isinstance(event, chunked.PlaneDone):
            if event.total > 1:
                _log(f"{path.name}: plane {event.done}/{event.total}")
            if event.classes is not None and event.total == 1 and model.config.n_classes > 1:
                _write_classes(out, event.classes, model.config.class_names)


def _write_classes(out: Path, classes, names) -> None:
    rows = [f"{i + 1},{c},{names[c - 1]}" for i, c in enumerate(classes)]
    (out.parent / f"{out.stem}_classes.csv").write_text("id,class,name\n" + "\n".join(rows) + "\n")


def _predict_with_probabilities(model, image, axes, args):
    """The in-memory path: whole-image probabilities, for --probabilities (2D only)."""
    from . import axes as ax
    from . import instances, io, predict

    spatial = ax.spatial_of(model.config)
    if not ax.is_single_plane(axes, spatial):
        raise UserInputError(f"--probabilities works on single images, this one has axes {axes}; leave it out for stacks")
    plane = np.asarray(ax.plane(image, axes, (), model.config.channel_axis, spatial))
    probs = predict.predict_probabilities(model, plane, tile_size=args.tile_size)
    io.write_probabilities(args.probabilities, probs)
    if not args.instances:
        return instances.semantic_labels(probs)
    return instances.instance_labels(probs, min_size=args.min_size).labels


def _predict_on_cluster(model, image, axes, out: Path, args):
    """Chunked prediction as a dask graph, computed on the cluster at --dask-scheduler, into --out .zarr."""
    from . import chunked, io

    if out.suffix.lower() != ".zarr":
        raise UserInputError("--dask-scheduler writes a zarr store; give --out OUT.zarr")
    if args.instances:
        raise UserInputError("--instances is not available with --dask-scheduler; predict semantic labels")
    try:
        from distributed import Client
    except ImportError:
        raise UserInputError("--dask-scheduler needs dask.distributed; pip install distributed") from None
    labels = chunked.labels_dask(model, image, axes, tile_size=args.tile_size)
    try:
        client = Client(args.dask_scheduler, timeout="5s")
    except OSError as exc:
        raise UserInputError(f"cannot reach the dask scheduler at {args.dask_scheduler} ({exc}); "
                             "check the address (e.g. tcp://127.0.0.1:8786)") from None
    with client, io.atomic_path(out) as tmp:
        _log(f"computing {labels.npartitions} chunks on {args.dask_scheduler}")
        labels.to_zarr(str(tmp))
    return None


def run_demo(args) -> int:
    from . import demo

    return demo.run(args)


if __name__ == "__main__":
    sys.exit(main())
