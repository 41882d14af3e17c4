"""Command line: ``napari-unet train | predict | demo``, a thin layer over the engine.

Each command lives in its own module (``train``, ``predict``, ``demo``) and calls the engine's
``pipeline``, as the widget does. Bad input ends with one line on stderr and exit status 2,
never a traceback (set NAPARI_UNET_DEBUG=1 to see one). Progress goes to stderr, results to files.
"""

from __future__ import annotations

import argparse
import math
import os

from ..errors import UserInputError
from . import demo
from . import export as export_command
from . import models as models_command
from . import predict as predict_command
from . import train as train_command
from .progress import fail

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
inside objects (2) per image are enough to start. To teach where touching
objects part, also paint a few whole objects (--objects: one id per object).
Training stops at the time budget or the step count, whichever comes first, and
saves the model (also on Ctrl-C, with what it learned so far).

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
  napari-unet predict nuclei cells.tif --out cells_masks.tif --instances   (bundled model, no training)
  napari-unet predict auto he_tile.png --out he_masks.tif --instances     (the bundled model for the image)
  napari-unet predict model.pt a.tif b.tif --out-dir masks/ --instances
  napari-unet predict model.pt stack.tif --axes ZYX --out stack_masks.tif
  napari-unet predict model.pt huge.zarr --out huge_masks.zarr
  napari-unet predict model.pt huge.zarr --out huge_masks.zarr --dask-scheduler tcp://10.0.0.5:8786

{LABEL_CONVENTION}"""


def whole_number(low: int):
    """argparse type: a whole number >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} must be at least {low}")
        return value
    return parse


positive_int, natural_int = whole_number(1), whole_number(0)


EXPORT_HELP = """\
Write a trained model for other tools. A bioimage.io package (.zip, the 0.5
format, validated with bioimageio.spec) holds the network as PyTorch state dict,
TorchScript and ONNX, the percentile scaling napari-unet applies, test tensors,
a cover and a model card from the training summary; napari-unet loads it back
(Load model, train --init, predict). TorchScript and ONNX files hold the network
alone: normalised images (N, C, Y, X) in, class probabilities out.

examples:
  napari-unet export model.pt --format bioimageio --out model.zip
  napari-unet export model.pt --format onnx --out model.onnx
  bioimageio test model.zip
"""


def diameter(text: str):
    """argparse type: "auto", "none" (never rescale) or a diameter in pixels (a finite number > 0)."""
    if text.strip().lower() in ("auto", "none"):
        return text.strip().lower() if text.strip().lower() == "auto" else None
    return positive_float(text)


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (no nan, no inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a positive, finite number")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number, 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="napari-unet", formatter_class=fmt,
        description="Human-in-the-loop U-Net segmentation (engine of the napari plugin).",
        epilog=LABEL_CONVENTION,
    )
    parser.add_argument("--version", action="version", version=f"napari-unet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,predict,export,models,demo}")

    t = sub.add_parser("train", help="train a model from images and sparse annotations",
                       description=TRAIN_HELP, formatter_class=fmt)
    t.add_argument("images", nargs="+", metavar="IMAGE", help="training images (TIFF, PNG, NPY, zarr, ...)")
    t.add_argument("--labels", nargs="+", required=True, metavar="LABELS",
                   help="one annotation image per IMAGE, same order and shape")
    t.add_argument("--objects", nargs="+", metavar="OBJECTS",
                   help="painted whole objects, one file per IMAGE: an integer image, 0 = no object, each "
                        "object its own id; they teach the model where touching objects part (an object's "
                        "class is the class painted under it in LABELS, else the first)")
    t.add_argument("--validation", nargs="+", metavar="MASK",
                   help="checked regions, one mask per IMAGE (nonzero = a region you annotated fully in LABELS): "
                        "held out of training; Dice and F1 on them are printed as training goes (2D images)")
    t.add_argument("--out", required=True, metavar="MODEL.pt", help="where to save the model")
    t.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                   help="stop after this many seconds (default 30 when --steps is not given)")
    t.add_argument("--steps", type=positive_int, metavar="N", help="stop after N optimisation steps")
    t.add_argument("--init", metavar="MODEL",
                   help="fine-tune this model (a .pt file, a package napari-unet exported, or a bundled "
                        "model's name, e.g. nuclei; see `napari-unet models`) instead of starting fresh; auto: "
                        "the bundled model whose prediction agrees with your strokes, else a new network")
    t.add_argument("--diameter", type=diameter, default="auto", metavar="PX|auto|none",
                   help="the objects' diameter in the images (px, twice the largest distance to their edge): a model "
                        "that knows its own (the bundled ones) trains on the images rescaled to it; a new model "
                        "records it. auto (default): the --init model's prediction, as predict measures it (a new model: "
                        "the painted --objects)")
    t.add_argument("--keep-better", action="store_true",
                   help="with --init: if this round's model does worse than the --init model on what you painted "
                        "(both scores are printed), write the --init model to --out instead")
    t.add_argument("--prior-weight", type=non_negative_float, metavar="W",
                   help="with --init: how strongly pixels you did not paint keep its prediction (default 1 for a "
                        "bundled model or one made from it, 0.3 for a model you trained; 0: off, the strokes "
                        "alone decide)")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to train (auto: CUDA, then MPS, then CPU)")
    t.add_argument("--seed", type=int, default=0,
                   help="random seed (runs with --steps and --threads on the CPU repeat exactly)")
    t.add_argument("--threads", type=positive_int,
                   help="CPU threads (default: the cores other programs leave free, at most OMP_NUM_THREADS)")
    t.add_argument("--class-names", nargs="+", metavar="NAME", help="names of the object classes 2, 3, ...")
    t.add_argument("--axes", metavar="AXES",
                   help="layout of the images, letters from TZCYX, e.g. YX, YXC, CYX, ZYX, TZCYX "
                        "(default: the one rule: a short trailing axis (<= 8) is channels, leading axes "
                        "are planes Z, T); stacks train on their annotated planes")
    t.add_argument("--channel-axis", choices=["none", "last", "first"], help=argparse.SUPPRESS)
    t.add_argument("--batch-size", type=positive_int, help="patches per step (default: 4 on the CPU, 32 on a GPU)")
    t.add_argument("--patch-size", type=positive_int, help="patch side in pixels (default: 96 on the CPU, 128 on a GPU)")
    t.add_argument("--depth", type=positive_int, default=3, help="U-Net levels below the first (new models: 1-6, default 3)")
    t.add_argument("--width", type=positive_int, default=16,
                   help="channels of the first level (new models: 1-128, default 16)")
    t.add_argument("--split-head", choices=["distance", "border", "none"], default="distance",
                   help="new models: the output that learns from --objects where touching objects part "
                        "(distance: each object's distance to its edge; border: its edge band; default distance)")
    t.add_argument("--3d", dest="three_d", action="store_true",
                   help="train a 3D U-Net on 3D patches around the annotations of volumes (Z axis needed; "
                        "default: a 2D U-Net on the annotated planes)")
    t.add_argument("--voxel-size", type=positive_float, nargs=3, metavar=("Z", "Y", "X"),
                   help="with --3d: voxel spacing, e.g. 2 0.5 0.5; sets the anisotropic pooling (default 1 1 1)")
    t.add_argument("--patch-depth", type=positive_int, help="with --3d: planes per patch (default: from --voxel-size, at most 16 on the CPU)")
    t.set_defaults(func=lambda args: train_command.run(args))

    p = sub.add_parser("predict", help="segment images with a trained model",
                       description=PREDICT_HELP, formatter_class=fmt)
    p.add_argument("model", metavar="MODEL", help="a .pt model file, a package napari-unet exported, a "
                   "bundled model's name (e.g. nuclei; see `napari-unet models`), or auto: the bundled model for "
                   "each image (nuclei-stained for a bright background, stained or brightfield; else nuclei)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", metavar="FILE", help="output label image (one IMAGE only)")
    where.add_argument("--out-dir", metavar="DIR",
                       help="folder for IMAGE_STEM_masks.tif files (stems that collide get their extension, "
                            "then their folder's name: a/img.tif, b/img.tif -> a_img_masks.tif, b_img_masks.tif)")
    p.add_argument("--instances", action="store_true", help="one id per object instead of class values")
    p.add_argument("--probabilities", metavar="FILE",
                   help="also save class probabilities, float32 (classes+1, Y, X), channel 0 = background (one IMAGE only)")
    p.add_argument("--measurements", metavar="FILE.csv",
                   help="with --instances: one row per object (label, class, area, centroid, bounding box, "
                        "intensity per channel, perimeter, eccentricity, solidity; stacks: per plane, 3D: volume); "
                        "several images: an image column")
    p.add_argument("--suggestions", metavar="FILE.csv",
                   help="also write the regions where the model is least sure, best first: header "
                        "rank,y0,x0,y1,x1,score (stacks: a z or t column after rank), pixel coordinates, y1 and "
                        "x1 exclusive, score = mean uncertainty (0-1); boxes of about one object: 32 px where "
                        "the objects are under 48 px across, else 64 (one IMAGE only)")
    p.add_argument("--suggest", type=positive_int, default=5, metavar="N", help="how many regions (default 5)")
    p.add_argument("--pixel-size", type=positive_float, metavar="SIZE",
                   help="pixel side in micrometres: --measurements adds the area (volume) in um2 (um3)")
    p.add_argument("--diameter", type=diameter, default="auto", metavar="PX|auto|none",
                   help="the objects' diameter (px, twice the largest distance to their edge): the image is seen "
                        "with its objects at the size the model learned and the masks come at the image's size. "
                        "auto (default): estimated from a first prediction of the image's centre; none: as it is")
    p.add_argument("--min-size", type=natural_int, default=30, help="smallest object kept with --instances, in pixels (default 30)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    p.add_argument("--tile-size", type=positive_int, default=512, help="tile side in pixels (default 512)")
    p.add_argument("--axes", metavar="AXES",
                   help="layout of the images, letters from TZCYX, e.g. ZYX, TYX, YXC, CZYX "
                        "(default: the one rule, with the model's channel count)")
    p.add_argument("--dask-scheduler", metavar="ADDRESS",
                   help="run the chunked prediction on this dask.distributed scheduler "
                        "(e.g. tcp://10.0.0.5:8786); needs --out OUT.zarr")
    p.set_defaults(func=lambda args: predict_command.run(args))

    e = sub.add_parser("export", help="write a model for other tools: bioimage.io package, TorchScript or ONNX",
                       description=EXPORT_HELP, formatter_class=fmt)
    e.add_argument("model", metavar="MODEL", help="a napari-unet model file or a bundled model's name")
    e.add_argument("--format", required=True, choices=["bioimageio", "torchscript", "onnx"],
                   help="bioimageio: a .zip package (all three weight formats, test tensors, cover, model card); "
                        "torchscript: a .pt file; onnx: a .onnx file")
    e.add_argument("--out", required=True, metavar="PATH", help="where to write it (.zip, .pt or .onnx)")
    e.add_argument("--image", metavar="IMAGE",
                   help="a sample image for the package's test tensors and cover (default: the bundled nuclei "
                        "sample, for one-channel models)")
    e.add_argument("--axes", metavar="AXES", help="layout of --image (default: the one rule)")
    e.set_defaults(func=lambda args: export_command.run(args))

    m = sub.add_parser("models", help="list the bundled models and their cards",
                       description="List the models that ship with napari-unet, with their cards (data, "
                                   "licence, measured figures). Use a name wherever a model file goes: "
                                   "predict nuclei IMAGE, train ... --init nuclei, Load model in the widget.")
    m.add_argument("name", nargs="?", help="show only this model")
    m.set_defaults(func=lambda args: models_command.run(args))

    d = sub.add_parser("demo", help="open napari with the nuclei sample and the U-Net widget",
                       description="Open napari with the bundled nuclei sample, its scribbles and the U-Net "
                                   "widget: press Train. With --headless, train on the scribbles and write "
                                   "the model and masks instead.", formatter_class=fmt)
    d.add_argument("--headless", action="store_true", help="no viewer: train, predict and write files")
    d.add_argument("--out-dir", default="napari-unet-demo", help="where --headless writes the model and masks")
    d.add_argument("--time-budget", type=positive_float, metavar="SECONDS",
                   help="with --headless: stop after this many seconds (default 30 when --steps is not given)")
    d.add_argument("--steps", type=positive_int, metavar="N",
                   help="with --headless: stop after N optimisation steps (the same result on any machine)")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    d.set_defaults(func=lambda args: demo.run(args))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except UserInputError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
    except OSError as exc:  # the file system said no: a name too long, a permission, a full disk
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return fail(f"cannot read or write a file{where}: {exc.strerror or exc}; check the paths and free space")
    except MemoryError:
        return fail("out of memory; use a smaller --tile-size or --batch-size, or the GPU", 1)
    except Exception as exc:  # an unexpected failure: one line, traceback on request
        if os.environ.get("NAPARI_UNET_DEBUG"):
            raise
        return fail(f"internal error: {type(exc).__name__}: {exc} (set NAPARI_UNET_DEBUG=1 for details)", 1)
