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
        axes = ax.check_axes(args.axes, raw.shape) if args.axes else ax.guess_axes(raw.shape, model.config.in_channels)
        if not ax.is_single_plane(axes):
            raise UserInputError(f"--image has axes {axes}; give one 2D image (a plane) for the package")
        image = ax.plane(raw, axes, (), model.config.channel_axis)
    export.export(model, out, args.format, image)
    log(f"wrote {out} ({args.format})")
    return 0
