"""``napari-unet predict``: a model file over image files, through ``pipeline.iter_predict_image``
(or, with ``--dask-scheduler``, ``cluster.labels_dask`` on a dask.distributed cluster)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .progress import log


def run(args) -> int:
    from ..engine.model import modelfile

    if args.out and len(args.images) > 1:
        raise UserInputError("--out takes one image; use --out-dir for several")
    if args.probabilities and len(args.images) > 1:
        raise UserInputError("--probabilities takes one image; predict images one at a time")
    if args.suggestions and len(args.images) > 1:
        raise UserInputError("--suggestions takes one image; predict images one at a time")
    args.images = list(dict.fromkeys(args.images))  # the same image named twice is predicted once
    if args.measurements and not args.instances:
        raise UserInputError("--measurements measures objects; add --instances")
    outs = plan_outputs(args)
    auto = args.model == AUTO and not Path(AUTO).exists()
    model = None if auto else modelfile.load_model(args.model, device=args.device)
    loaded = {}
    tables = []
    for path, out in zip(args.images, outs):
        if auto:
            name, why = bundled_for_file(Path(path), args.axes)
            if name not in loaded:
                loaded[name] = modelfile.load_model(name, device=args.device)
            model = loaded[name]
            log(f"{Path(path).name}: the bundled {name} model ({why})")
        tables.append(({"image": Path(path).name}, predict_file(model, Path(path), out, args)))
    if args.measurements:
        from ..engine.prediction import measure

        table = measure.stack_columns(tables)
        measure.write_csv(args.measurements, table)
        log(f"{len(table['label'])} object(s) measured -> {args.measurements}")
    return 0


AUTO = "auto"  # the model argument that picks a bundled model for each image


def bundled_for_file(path: Path, axes: str | None) -> tuple[str, str]:
    """(name, reason): the bundled model for the image file ``path`` (``start.start_for_image`` on its
    first plane): ``nuclei-stained`` for a bright background, else ``nuclei``."""
    from ..engine.disk import io
    from ..engine.training.start import start_for_whole_image

    return start_for_whole_image(io.read_image(path, lazy=True), axes)


def plan_outputs(args) -> list[Path]:
    """The mask path of each image, checked before any work: formats that can hold masks, folders
    that exist and take files, and no output that is an input or another output of this run."""
    from ..engine import files
    from ..engine.disk import io

    if args.out_dir:
        folder = Path(args.out_dir)
        if folder.exists() and not folder.is_dir():
            raise UserInputError(f"--out-dir {folder} is a file; give a folder (it is made if missing)")
        folder.mkdir(parents=True, exist_ok=True)
        outs = files.mask_paths(args.images, folder)
    else:
        outs = [io.check_mask_path(args.out)]
    named = [(f"the mask of {Path(p).name}", out) for p, out in zip(args.images, outs)]
    if args.probabilities:
        named.append(("--probabilities", io.check_probabilities_path(args.probabilities)))
    if args.suggestions:
        named.append(("--suggestions", Path(args.suggestions)))
        if Path(args.suggestions).suffix.lower() != ".csv":
            raise UserInputError("--suggestions writes a CSV file; name it e.g. regions.csv")
    if args.measurements:
        named.append(("--measurements", Path(args.measurements)))
        if Path(args.measurements).suffix.lower() != ".csv":
            raise UserInputError("--measurements writes a CSV file; name it e.g. measurements.csv")
    if args.instances:  # with several classes a CSV of the objects' classes goes beside each mask
        named += [(f"the classes of {Path(p).name}", classes_path(out)) for p, out in zip(args.images, outs)]
    for path in args.images:
        files.check_input(path)
    files.check_outputs([None if args.model == AUTO else args.model, *args.images], named)
    for _, out in named:
        files.check_writable_folder(out)
    return outs


def classes_path(out: Path) -> Path:
    """Where the class of each object goes, beside the mask ``out``."""
    return out.parent / f"{out.stem}_classes.csv"


def predict_file(model, path: Path, out: Path, args):
    """Predict one image file (2D or a stack) and write its mask (and probabilities / classes if asked);
    return its objects' measurements (``measure.measure_image`` columns) when args.measurements, else None.

    args: tile_size, instances, min_size, probabilities (a path or None), axes (or None),
    dask_scheduler (an address or None), measurements (a path or None), pixel_size.
    """
    from ..engine import layout as ax
    from ..engine.disk import io

    image = io.read_image(path, lazy=True)
    found = ax.resolve(image.shape, args.axes, model.config)  # read once: the pipeline walks it as it is
    if out.suffix.lower() != ".zarr":
        io.check_mask_path(out, len(found.labels_shape))  # e.g. a stack into .png: before the work
    if getattr(args, "suggestions", None) and (not isinstance(image, np.ndarray) or out.suffix.lower() == ".zarr"):
        raise UserInputError("--suggestions needs an image held in memory (not zarr) and a mask file (not .zarr); "
                             "leave it out for images larger than memory")
    start = time.perf_counter()
    classes = regions = None
    if args.dask_scheduler:
        _predict_on_cluster(model, image, found.axes, out, args)
        labels = None
    elif out.suffix.lower() == ".zarr":
        with io.open_label_store(out, found.labels_shape, np.uint32 if args.instances else np.uint8) as store:
            _, classes, _, regions = _predict(model, image, found, store, path, out, args)
        labels = io.read_image(out, lazy=True)
    else:
        labels, classes, _, regions = _predict(model, image, found, None, path, out, args)
        io.write_mask(out, labels)
    if getattr(args, "suggestions", None):
        _write_suggestions(regions, found.stack, args)
    count = f", {int(np.max(labels, initial=0))} objects" if args.instances and isinstance(labels, np.ndarray) else ""
    log(f"{path.name}: done in {time.perf_counter() - start:.1f} s{count} -> {out}")
    if not getattr(args, "measurements", None):
        return None
    from ..engine.prediction import measure

    return measure.measure_image(labels, image, found.axes, found.spatial, classes,
                                 model.config.class_names, getattr(args, "pixel_size", None))


def _predict(model, image, found, target, path: Path, out: Path, args):
    """The labels of ``image`` (layout ``found``, read already; into ``target`` when given), with
    progress about once a second."""
    from ..engine.disk import io
    from ..engine.prediction import pipeline

    last, result = time.perf_counter(), None  # the first line after a second: quick images print none
    # the regions to check come from the same pass (plane by plane in stacks): nothing is predicted twice
    suggest = args.suggest if getattr(args, "suggestions", None) else 0
    events = pipeline.iter_predict_image(model, image, found, target, instances=args.instances,
                                         probabilities=bool(args.probabilities), min_size=args.min_size,
                                         tile_size=args.tile_size, suggest=suggest,
                                         diameter=getattr(args, "diameter", "auto"))
    for event in events:
        now = time.perf_counter()
        if isinstance(event, pipeline.Progress) and event.plane is None and now - last > 1.0:
            last = now
            log(f"{path.name}: {100 * event.fraction:.0f} %")
        elif isinstance(event, pipeline.Predicted):
            result = event
            for note in event.notes:
                log(f"{path.name}: {note}")
    if args.probabilities:
        io.write_probabilities(args.probabilities, result.probabilities)
    if result.classes is not None and model.config.n_classes > 1:
        _write_classes(out, result.classes, model.config.class_names)
    return result.labels, result.classes, result.probabilities, result.regions


def _write_suggestions(regions, stack_axes: str, args) -> None:
    """--suggestions: the regions where the model is least sure, ranked, as CSV (``stack_axes``: the
    image's plane axes, e.g. "Z", columns of the CSV)."""
    from ..engine.prediction import uncertainty

    uncertainty.write_suggestions(args.suggestions, regions, stack_axes)
    log(f"{len(regions)} region(s) to check -> {args.suggestions}")


def _write_classes(out: Path, classes, names) -> None:
    """The class of each object, as CSV beside the masks (written whole or not at all)."""
    from ..engine.files import atomic_path

    rows = [f"{i + 1},{c},{names[c - 1]}" for i, c in enumerate(classes)]
    with atomic_path(classes_path(out)) as tmp:
        tmp.write_text("id,class,name\n" + "\n".join(rows) + "\n")


def _predict_on_cluster(model, image, axes, out: Path, args) -> None:
    """Chunked prediction as a dask graph, computed on the cluster at --dask-scheduler, into --out .zarr."""
    from ..engine.disk import io
    from ..engine.prediction import cluster

    if out.suffix.lower() != ".zarr":
        raise UserInputError("--dask-scheduler writes a zarr store; give --out OUT.zarr")
    if args.instances:
        raise UserInputError("--instances is not available with --dask-scheduler; predict semantic labels")
    try:
        from distributed import Client
    except ImportError:
        raise UserInputError("--dask-scheduler needs dask.distributed; pip install distributed") from None
    labels = cluster.labels_dask(model, image, axes, tile_size=args.tile_size)
    client = connect(Client, args.dask_scheduler)
    with client, io.atomic_path(out) as tmp:
        log(f"computing {labels.npartitions} chunks on {args.dask_scheduler}")
        client.compute(labels.to_zarr(str(tmp), compute=False)).result()


CONNECT_TIMEOUT_S = 20


def connect(client_class, address: str, timeout: float | None = None):
    """A dask.distributed client of the scheduler at ``address``, or one line saying why not.

    Connecting runs in a thread we wait for at most ``timeout`` s (default ``CONNECT_TIMEOUT_S``,
    read at call time): a port that accepts and never answers kept distributed's own timeout from
    firing (no output after 180 s)."""
    timeout = CONNECT_TIMEOUT_S if timeout is None else timeout
    result: dict = {}

    def attempt():
        try:
            # not the default scheduler: a client that answers too late must not take over dask's
            # later computations in this process
            result["client"] = client_class(address, timeout=f"{timeout / 2:.0f}s", set_as_default=False)
        except Exception as exc:  # noqa: BLE001 - reported below as one line
            result["error"] = exc
    thread = threading.Thread(target=attempt, daemon=True, name="napari-unet-dask-connect")
    thread.start()
    thread.join(timeout)
    if "client" in result:
        return result["client"]
    why = f"no answer within {timeout:.0f} s" if thread.is_alive() else f"{type(result['error']).__name__}: " \
        f"{str(result['error']).splitlines()[0][:120] if str(result['error']) else 'refused'}"
    raise UserInputError(f"cannot reach the dask scheduler at {address} ({why}); check the address, "
                         "e.g. tcp://127.0.0.1:8786, and that the scheduler runs")
