"""``napari-unet predict``: a model file over image files, through ``pipeline.iter_predict_image``
(or, with ``--dask-scheduler``, ``cluster.labels_dask`` on a dask.distributed cluster)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .progress import log


def run(args) -> int:
    from ..engine import io

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
    """Predict one image file (2D or a stack) and write its mask (and probabilities / classes if asked).

    args: tile_size, instances, min_size, probabilities (a path or None), axes (or None),
    dask_scheduler (an address or None).
    """
    from ..engine import io
    from ..engine import layout as ax

    image = io.read_image(path, lazy=True)
    shape = tuple(image.shape)
    axes = ax.check_axes(args.axes, shape) if args.axes else ax.guess_axes(shape, model.config.in_channels)
    start = time.perf_counter()
    if args.dask_scheduler:
        _predict_on_cluster(model, image, axes, out, args)
    elif out.suffix.lower() == ".zarr":
        with io.open_label_store(out, ax.labels_shape(shape, axes), np.uint32 if args.instances else np.uint8) as store:
            _predict(model, image, axes, store, path, out, args)
    else:
        io.write_mask(out, _predict(model, image, axes, None, path, out, args))
    log(f"{path.name}: done in {time.perf_counter() - start:.1f} s -> {out}")


def _predict(model, image, axes, target, path: Path, out: Path, args):
    """The labels of ``image`` (into ``target`` when given), with progress about once a second."""
    from ..engine import io, pipeline

    last, result = time.perf_counter(), None  # the first line after a second: quick images print none
    events = pipeline.iter_predict_image(model, image, axes, target, instances=args.instances,
                                         probabilities=bool(args.probabilities), min_size=args.min_size,
                                         tile_size=args.tile_size)
    for event in events:
        now = time.perf_counter()
        if isinstance(event, pipeline.Progress) and event.plane is None and now - last > 1.0:
            last = now
            log(f"{path.name}: {100 * event.fraction:.0f} %")
        elif isinstance(event, pipeline.Predicted):
            result = event
    if args.probabilities:
        io.write_probabilities(args.probabilities, result.probabilities)
    if result.classes is not None and model.config.n_classes > 1:
        _write_classes(out, result.classes, model.config.class_names)
    return result.labels


def _write_classes(out: Path, classes, names) -> None:
    rows = [f"{i + 1},{c},{names[c - 1]}" for i, c in enumerate(classes)]
    (out.parent / f"{out.stem}_classes.csv").write_text("id,class,name\n" + "\n".join(rows) + "\n")


def _predict_on_cluster(model, image, axes, out: Path, args) -> None:
    """Chunked prediction as a dask graph, computed on the cluster at --dask-scheduler, into --out .zarr."""
    from ..engine import cluster, io

    if out.suffix.lower() != ".zarr":
        raise UserInputError("--dask-scheduler writes a zarr store; give --out OUT.zarr")
    if args.instances:
        raise UserInputError("--instances is not available with --dask-scheduler; predict semantic labels")
    try:
        from distributed import Client
    except ImportError:
        raise UserInputError("--dask-scheduler needs dask.distributed; pip install distributed") from None
    labels = cluster.labels_dask(model, image, axes, tile_size=args.tile_size)
    try:
        client = Client(args.dask_scheduler, timeout="5s")
    except OSError as exc:
        raise UserInputError(f"cannot reach the dask scheduler at {args.dask_scheduler} ({exc}); "
                             "check the address (e.g. tcp://127.0.0.1:8786)") from None
    with client, io.atomic_path(out) as tmp:
        log(f"computing {labels.npartitions} chunks on {args.dask_scheduler}")
        labels.to_zarr(str(tmp))
