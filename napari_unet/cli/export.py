"""``napari-unet export``: a model file to a bioimage.io package, TorchScript or ONNX (``engine.export``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UserInputError
from .progress import log


def run(args) -> int:
    from ..engine import files
    from ..engine import layout as ax
    from ..engine.disk import export, io
    from ..engine.model import modelfile

    out = Path(args.out)
    files.check_outputs([args.model, args.image], [("--out", out)])
    model = modelfile.load_model(args.model)
    image = None
    if args.image:
        raw = io.read_image(args.image)
        found = ax.resolve(raw.shape, args.axes, model.config)
        if not found.single:
            raise UserInputError(f"--image has axes {found.axes}; give one 2D image (a plane) for the package")
        image = ax.plane(raw, found.axes, ())
    export.export(model, out, args.format, image)
    log(f"wrote {out} ({args.format})")
    return 0
