"""Models that travel: TorchScript, ONNX and bioimage.io packages of a napari-unet model.

What leaves is ``model.ClassProbabilities``: a 2D U-Net from (N, C, H, W) images, normalised by
their 1st and 99.8th percentiles per channel as in training, to class probabilities (N, K, H, W),
any H, W of at least the network's multiple. The split output learned from painted objects stays
in napari-unet (its instance step is not part of the exported network).

A bioimage.io package (the 0.5 format, built and validated with ``bioimageio.spec``) holds the
network three ways (``pytorch_state_dict`` with its architecture source, ``torchscript``,
``onnx``), the same percentile scaling as its preprocessing, test tensors, a cover (an input and
its prediction side by side), a model card made from the training summary, and the napari-unet
model file itself as an attachment, so napari-unet loads its own packages back losslessly
(``modelfile.load_model``). Needs the ``export`` extra: ``pip install 'napari-unet[export]'``.
"""

from __future__ import annotations

import inspect
import re
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np

from ...errors import UserInputError
from ..model.modelfile import ATTACHMENT

FORMATS = ("bioimageio", "torchscript", "onnx")
SUFFIXES = {"bioimageio": ".zip", "torchscript": ".pt", "onnx": ".onnx"}
HALO = 16  # pixels at each output edge that see less context than the rest (for tiling consumers)
ONNX_OPSET = 17
TEST_SIDE = 256  # the test input and cover: a crop of the sample image of at most this side


def export(model, out, fmt: str, image=None) -> Path:
    """Write ``model`` as ``fmt`` ("bioimageio", "torchscript" or "onnx") to ``out``; returns the path.

    image: a sample plane, channels first (C, Y, X) (``layout.plane``), for a package's test tensors and
    cover (None: the bundled nuclei sample, for one-channel models).
    """
    from ..files import atomic_path, check_writable_folder

    if fmt not in FORMATS:
        raise UserInputError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if model.config.spatial_dims != 2:
        raise UserInputError("only 2D models can be exported for now; 3D U-Nets stay napari-unet model files")
    out = Path(out)
    if out.suffix.lower() != SUFFIXES[fmt]:
        raise UserInputError(f"a {fmt} export is a {SUFFIXES[fmt]} file; name it e.g. {out.with_suffix(SUFFIXES[fmt]).name}")
    check_writable_folder(out)
    _require(fmt)
    with atomic_path(out) as tmp:
        if fmt == "torchscript":
            save_torchscript(model, tmp)
        elif fmt == "onnx":
            save_onnx(model, tmp)
        else:
            save_bioimageio(model, tmp, image)
    return out


def _require(fmt: str) -> None:
    needed = {"torchscript": [], "onnx": ["onnx"], "bioimageio": ["onnx", "bioimageio.spec"]}
    import importlib.util

    missing = [m for m in needed[fmt] if importlib.util.find_spec(m) is None]
    if missing:
        raise UserInputError(f"exporting {fmt} needs {', '.join(missing)}: pip install 'napari-unet[export]'")


def probability_net(model):
    """``model``'s network as ``ClassProbabilities``, on the CPU, in eval mode (a copy)."""
    import copy

    from ..model.unet import ClassProbabilities

    net = copy.deepcopy(model.net).cpu().float().eval()
    return ClassProbabilities(net).eval()


def _example(model, side: int = 64):
    import torch

    return torch.rand(1, model.config.in_channels, side, side)


def save_torchscript(model, path) -> None:
    """The traced network; its shape arithmetic is traced too, so it takes any size >= the multiple."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the shape arithmetic, which is traced
        traced = torch.jit.trace(probability_net(model), _example(model))
    # into memory first: torch's file writer aborts the whole process (a C++ exception thrown in a
    # destructor) when the disk is full; a Python write fails with an OSError, handled as any other
    buffer = BytesIO()
    torch.jit.save(traced, buffer)
    write_bytes(path, buffer.getvalue())


def write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` (a temporary file of ``files.atomic_path``), a full disk an OSError."""
    with open(path, "wb") as f:
        f.write(data)


def save_onnx(model, path) -> None:
    """ONNX with dynamic batch, height and width (the TorchScript-based exporter: 2-3 s against
    ~30 s for the dynamo one here, the same graph for these operations)."""
    import warnings

    import torch

    names = {"input": {0: "batch", 2: "y", 3: "x"}, "probabilities": {0: "batch", 2: "y", 3: "x"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(probability_net(model), (_example(model),), str(path), dynamo=False,
                          opset_version=ONNX_OPSET, input_names=["input"], output_names=["probabilities"],
                          dynamic_axes=names)


def architecture_source() -> str:
    """A self-contained Python file defining the network (for ``pytorch_state_dict`` weights): the
    model module as it is, without its relative import, and a function building
    ``ClassProbabilities`` from the UNetConfig's fields."""
    from ..model import unet as model_module

    source = inspect.getsource(model_module)
    source = re.sub(r"^from \.config import UNetConfig\n", "", source, flags=re.M)
    return source + '''

class _Config:
    """The fields of napari-unet's UNetConfig that the network reads."""

    def __init__(self, **fields):
        self.__dict__.update(fields)
        self.voxel_size = tuple(fields.get("voxel_size", (1.0, 1.0, 1.0)))
        self.split_head = fields.get("split_head", "none")

    @property
    def n_outputs(self):
        return self.n_classes + 1

    @property
    def n_split_outputs(self):
        return 0 if self.split_head == "none" else 1


def napari_unet_probabilities(**config):
    """ClassProbabilities of a U-Net built from a napari-unet UNetConfig's fields."""
    return ClassProbabilities(UNet(_Config(**config)))
'''


def test_image(model, image=None) -> np.ndarray:
    """(C, H, W) float32: a crop of ``image`` ((C, H, W)) or of the bundled sample, at most TEST_SIDE."""
    from . import io

    if image is None:
        if model.config.in_channels != 1:
            raise UserInputError(f"the model takes {model.config.in_channels} channels: give a sample image "
                                 "(export --image) for the package's test tensors and cover")
        from ...sample_data import sample_paths

        image = io.read_image(sample_paths()["image"])[None]
    chw = np.asarray(image, np.float32)
    if chw.shape[0] != model.config.in_channels:
        raise UserInputError(f"the sample image has {chw.shape[0]} channel(s), the model {model.config.in_channels}")
    h, w = chw.shape[1:]
    m = 2 * HALO + model.net.size_multiple
    if min(h, w) < m:
        raise UserInputError(f"the sample image is {h}x{w}; give one of at least {m}x{m} pixels")
    y0, x0 = (h - min(h, TEST_SIDE)) // 2, (w - min(w, TEST_SIDE)) // 2
    return chw[:, y0:y0 + TEST_SIDE, x0:x0 + TEST_SIDE]


def save_bioimageio(model, path, image=None) -> None:
    """A validated bioimage.io package (zip) of ``model``; see the module docstring."""
    from bioimageio.spec import save_bioimageio_package

    with tempfile.TemporaryDirectory() as tmp:
        descr = _package_description(model, Path(tmp), test_image(model, image))
        save_bioimageio_package(descr, output_path=Path(path))


def _package_description(model, folder: Path, chw: np.ndarray):
    """The ModelDescr of the package, its files written into ``folder``."""
    import torch
    from bioimageio.spec.model import v0_5 as bio

    from .. import convert
    from ..model import modelfile

    cfg = model.config
    net = probability_net(model)
    normalised = convert.prepare(chw, cfg)
    with torch.no_grad():
        probabilities = net(torch.from_numpy(normalised[None])).numpy()
    np.save(folder / "test_input.npy", chw[None])
    np.save(folder / "test_output.npy", probabilities)
    torch.save(net.state_dict(), folder / "weights.pt")
    save_torchscript(model, folder / "weights_torchscript.pt")
    save_onnx(model, folder / "weights.onnx")
    (folder / "napari_unet_unet.py").write_text(architecture_source())
    modelfile.save_model(model, folder / ATTACHMENT)
    _write_cover(chw, probabilities[0], folder / "cover.png")
    (folder / "README.md").write_text(model_card(model))

    m = model.net.size_multiple
    channels = [bio.Identifier(f"channel{i}") for i in range(cfg.in_channels)]
    scale = bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
        axes=[bio.AxisId("y"), bio.AxisId("x")], min_percentile=cfg.norm_percentiles[0],
        max_percentile=cfg.norm_percentiles[1]))
    size = bio.ParameterizedSize(min=2 * HALO + m, step=1)
    inputs = [bio.InputTensorDescr(
        id=bio.TensorId("raw"), description="the image, any intensity range (scaled by its percentiles)",
        axes=[bio.BatchAxis(), bio.ChannelAxis(channel_names=channels),
              bio.SpaceInputAxis(id=bio.AxisId("y"), size=size), bio.SpaceInputAxis(id=bio.AxisId("x"), size=size)],
        test_tensor=bio.FileDescr(source=folder / "test_input.npy"),
        data=bio.IntervalOrRatioDataDescr(type="float32"), preprocessing=[scale])]
    names = ["background"] + [re.sub(r"[^\w]+", "_", n).strip("_") or f"class{i + 1}"
                              for i, n in enumerate(cfg.class_names)]
    outputs = [bio.OutputTensorDescr(
        id=bio.TensorId("probabilities"), description="class probabilities: background, then each class",
        axes=[bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier(n) for n in _unique(names)]),
              *[bio.SpaceOutputAxisWithHalo(id=bio.AxisId(a), halo=HALO,
                                            size=bio.SizeReference(tensor_id=bio.TensorId("raw"), axis_id=bio.AxisId(a)))
                for a in ("y", "x")]],
        test_tensor=bio.FileDescr(source=folder / "test_output.npy"),
        data=bio.IntervalOrRatioDataDescr(type="float32"))]
    version = bio.Version(torch.__version__.split("+")[0])
    architecture = bio.ArchitectureFromFileDescr(source=folder / "napari_unet_unet.py",
                                                 callable=bio.Identifier("napari_unet_probabilities"),
                                                 kwargs={k: v for k, v in cfg.to_dict().items()})
    weights = bio.WeightsDescr(
        pytorch_state_dict=bio.PytorchStateDictWeightsDescr(source=folder / "weights.pt", architecture=architecture,
                                                            pytorch_version=version),
        torchscript=bio.TorchscriptWeightsDescr(source=folder / "weights_torchscript.pt", pytorch_version=version,
                                                parent="pytorch_state_dict"),
        onnx=bio.OnnxWeightsDescr(source=folder / "weights.onnx", opset_version=ONNX_OPSET, parent="pytorch_state_dict"))
    from ... import __version__

    return bio.ModelDescr(
        name=re.sub(r"[^\w+\- ()]+", " ", f"napari-unet {' '.join(cfg.class_names)}", flags=re.ASCII).strip()[:128],
        description=f"A U-Net for {', '.join(cfg.class_names)}, trained from sparse annotations in napari-unet "
                    f"{__version__} ({model.summary.get('total_steps', 0)} steps).",
        authors=[bio.Author(name="napari-unet user")],
        cite=[bio.CiteEntry(text="Ronneberger, Fischer and Brox. U-Net: Convolutional Networks for Biomedical "
                                 "Image Segmentation. MICCAI 2015.", doi=bio.Doi("10.1007/978-3-319-24574-4_28")),
              bio.CiteEntry(text="napari-unet: human-in-the-loop U-Net segmentation for napari.",
                            url="https://github.com/napari-unet/napari-unet")],
        license=bio.LicenseId("CC-BY-4.0"),
        tags=["napari-unet", "unet", "segmentation", "2d", "pytorch", "onnx"],
        documentation=bio.FileDescr(source=folder / "README.md"), covers=[bio.FileDescr(source=folder / "cover.png")],
        attachments=[bio.FileDescr(source=folder / ATTACHMENT)],
        inputs=inputs, outputs=outputs, weights=weights,
        config={"napari_unet": {"version": __version__, "model_file": ATTACHMENT, "diameter": cfg.diameter,
                                "invert_bright_background": cfg.invert_bright_background}},
    )


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}_{seen[n]}")
    return out


def _write_cover(chw: np.ndarray, probabilities: np.ndarray, path: Path) -> None:
    """The input (first channel, contrast-stretched) beside the predicted classes, coloured."""
    import imageio.v3 as iio

    image = chw[0]
    lo, hi = np.percentile(image, [1, 99.8])
    gray = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    colours = np.array([[0, 0, 0], [230, 80, 60], [60, 170, 230], [240, 200, 40], [120, 220, 120]], np.float32)
    classes = probabilities.argmax(0)
    overlay = colours[classes % len(colours)] * (classes > 0)[..., None] / 255
    side = np.concatenate([np.repeat(gray[..., None], 3, -1), 0.5 * gray[..., None] + 0.5 * overlay], 1)
    iio.imwrite(path, (side * 255).astype(np.uint8))


def _conversion_lines(cfg) -> list[str]:
    """What a consumer must do to the images that napari-unet does itself (object size, colour, inversion)."""
    lines = []
    if cfg.diameter is not None:
        lines.append(f"- Object size: the network learned objects {cfg.diameter:.1f} pixels across (twice the "
                     "largest distance to their edge); rescale an image whose objects are another size so "
                     "that they come at this size, and its output back (napari-unet does this itself, with "
                     "the diameter estimated or given).")
    if cfg.in_channels == 1:
        lines.append("- Colour images: take their luminance, 0.2125 R + 0.7154 G + 0.0721 B (napari-unet does this).")
    if cfg.invert_bright_background:
        lines.append("- Polarity: invert images whose background is bright (the mode of the scaled image above 0.5), "
                     "so objects come bright on dark as the network learned them (napari-unet does this).")
    return lines


def model_card(model) -> str:
    """The package's documentation, from the model's config and training summary (markdown)."""
    cfg, summary = model.config, model.summary
    rounds = summary.get("rounds", [])
    lines = [
        f"# napari-unet model: {', '.join(cfg.class_names)}", "",
        "A 2D U-Net (Ronneberger et al. 2015) trained in [napari-unet](https://github.com/napari-unet/napari-unet) "
        "from sparse annotations (scribbles and, if painted, whole objects).", "",
        "## Input and output", "",
        f"- Input: {cfg.in_channels} channel(s) ({cfg.channel_axis} in the user's images), any size of at least "
        f"{2 * HALO + model.net.size_multiple} pixels; each image is scaled per channel so that its "
        f"{cfg.norm_percentiles[0]:g}th and {cfg.norm_percentiles[1]:g}th percentiles become 0 and 1.",
        f"- Output: class probabilities (softmax): background, {', '.join(cfg.class_names)}. "
        f"The outer {HALO} pixels of a tile see less context: overlap tiles by at least that much.",
        "- napari-unet's own instance step (splitting touching objects) is not part of the network; "
        "`napari_unet_model.pt` (attached) loads back into napari-unet with it.",
        *_conversion_lines(cfg), "",
        "## Training", "",
        f"- Architecture: depth {cfg.depth}, width {cfg.width} (channels {', '.join(str(cfg.width * 2**i) for i in range(cfg.depth + 1))}).",
        f"- {summary.get('total_steps', 0)} steps in {len(rounds)} round(s), "
        f"{sum(r.get('seconds', 0) for r in rounds):.0f} s in all.",
    ]
    for i, r in enumerate(rounds, start=1):
        lines.append(f"  - round {i}: {r.get('steps')} steps, {r.get('seconds')} s on {r.get('device')}, "
                     f"{r.get('images')} image(s), {r.get('annotated_pixels')} annotated pixels"
                     + (f", {r.get('object_pixels')} pixels of painted objects" if r.get("object_pixels") else "")
                     + (f", final loss {r['final_loss']:.3f}" if r.get("final_loss") is not None else ""))
    validation = summary.get("validation")
    lines += ["", "## Validation", ""]
    if validation:
        lines += [f"- {k}: {v}" for k, v in validation.items()]
    else:
        lines.append("No held-out annotations were scored while this model trained; check it on images "
                     "annotated by hand before relying on it.")
    lines += ["", "## Licence and citation", "",
              "CC-BY-4.0. Cite U-Net (Ronneberger et al., MICCAI 2015) and napari-unet.", ""]
    return "\n".join(lines)
