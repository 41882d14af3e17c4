"""Images and label masks on disk (the model file is ``modelfile``).

Reading takes what the file says: OME-Zarr's full-resolution level from its multiscales
metadata, 16-bit colour PNGs at full depth, palette PNGs of labels as their indices. Masks are
written as TIFF (default), PNG (2D, up to 16-bit), NPY or zarr, always through a temporary file
renamed into place (``files.atomic_path``), so a failed write never leaves half a file behind;
values a format cannot hold are refused, never wrapped.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from ...errors import UserInputError
from ..files import atomic_path, check_input

MASK_SUFFIXES = (".tif", ".tiff", ".png", ".npy", ".zarr")
PROBABILITY_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy", ".zarr")


# --- masks -------------------------------------------------------------------------------------

def mask_dtype(labels: np.ndarray, suffix: str) -> np.dtype:
    """Smallest unsigned type that holds the labels (PNG: at most uint16); refuses what none holds."""
    if labels.dtype.kind not in "uib":
        raise UserInputError(f"labels of type {labels.dtype} are not whole numbers; masks hold integers 0, 1, 2, ...")
    if labels.size and labels.min() < 0:
        raise UserInputError(f"labels hold the negative value {int(labels.min())}; masks hold 0 and positive ids")
    top = int(labels.max()) if labels.size else 0
    if top <= 255 and suffix not in (".tif", ".tiff"):
        return np.dtype(np.uint8)
    if top <= 65535:
        return np.dtype(np.uint16)
    if suffix == ".png":
        raise UserInputError(f"label {top} does not fit a 16-bit PNG; save as .tif, .npy or .zarr")
    return np.dtype(np.uint32 if top <= np.iinfo(np.uint32).max else np.uint64)


def check_mask_path(path, ndim: int | None = None) -> Path:
    """The path a mask will be written to (``.tif`` added when it has no suffix); refuses, before
    any work, a format that cannot hold masks or (PNG) a mask of ``ndim`` > 2 dimensions."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir() and suffix != ".zarr":
        raise UserInputError(f"{path} is a folder; give a file name for the mask (e.g. {path / 'masks.tif'})")
    if suffix == "":
        return path.with_suffix(".tif")
    if suffix not in MASK_SUFFIXES:
        raise UserInputError(f"cannot write masks as {suffix!r}; use one of {', '.join(MASK_SUFFIXES)}")
    if suffix == ".png" and ndim is not None and ndim != 2:
        raise UserInputError(f"PNG holds 2D masks only, this one has {ndim} dimensions; use .tif or .zarr")
    return path


def write_mask(path, labels) -> Path:
    """Write a label image; the format comes from the suffix (.tif default when none)."""
    labels = np.asarray(labels)
    path = check_mask_path(path, labels.ndim)
    suffix = path.suffix.lower()
    labels = labels.astype(mask_dtype(labels, suffix), copy=False)
    with atomic_path(path) as tmp:
        if suffix in (".tif", ".tiff"):
            import tifffile

            tifffile.imwrite(tmp, labels, compression="zlib")
        elif suffix == ".png":
            import imageio.v3 as iio

            iio.imwrite(tmp, labels, extension=".png")
        elif suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, labels)
        else:
            import zarr

            zarr.save_array(str(tmp), labels)
    return path


def check_probabilities_path(path) -> Path:
    """The path probabilities will be written to; refuses a format that cannot hold them."""
    path = Path(path)
    suffix = path.suffix.lower() or ".tif"
    if suffix not in PROBABILITY_SUFFIXES:
        raise UserInputError(f"cannot write probabilities as {suffix!r}; use .tif, .npy or .zarr")
    return path.with_suffix(suffix)


def write_probabilities(path, probabilities: np.ndarray) -> Path:
    """Write float32 probabilities (K, H, W) as .tif (default), .npy or .zarr."""
    path = check_probabilities_path(path)
    suffix = path.suffix.lower()
    probs = np.asarray(probabilities, dtype=np.float32)
    with atomic_path(path) as tmp:
        if suffix == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, probs)
        elif suffix == ".zarr":
            import zarr

            zarr.save_array(str(tmp), probs)
        else:
            import tifffile

            tifffile.imwrite(tmp, probs, compression="zlib")
    return path


@contextlib.contextmanager
def open_label_store(path, shape, dtype, chunk: int = 1024):
    """A new zarr array at ``path`` for labels of ``shape``, filled by the caller.

    Written under a temporary name and renamed onto ``path`` only when the block
    exits without error, so a failed prediction never leaves a half-written store.
    Chunks: one plane deep, ``chunk`` pixels square.
    """
    import zarr

    chunks = (1,) * (len(shape) - 2) + tuple(min(chunk, n) for n in shape[-2:])
    with atomic_path(Path(path)) as tmp:
        yield zarr.open_array(str(tmp), mode="w", shape=shape, chunks=chunks, dtype=dtype)


# --- reading -----------------------------------------------------------------------------------

def read_image(path, lazy: bool = False):
    """Read an image: TIFF, NPY, zarr (OME-Zarr: the full-resolution level), PNG (16-bit at full
    depth) or anything else imageio reads (JPEG, ...).

    lazy: return zarr stores as zarr arrays (read only where sliced, for images
    larger than memory) instead of numpy arrays.
    """
    return _read(path, lazy, labels=False)


def read_labels(path):
    """Read an annotation or label image: as ``read_image``, but a palette PNG gives its indices
    (the label values), not the colours they are drawn in."""
    return _read(path, False, labels=True)


def _read(path, lazy: bool, labels: bool):
    path = check_input(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            return tifffile.imread(path)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".zarr":
            store = _zarr_full_resolution(path)
            return store if lazy else np.asarray(store)
        if suffix == ".png":
            return _read_png(path, labels)
        import imageio.v3 as iio

        return np.asarray(iio.imread(path))
    except UserInputError:
        raise
    except Exception as exc:  # every reader raises its own types, with advice that rarely fits
        kind = suffix.lstrip(".").upper() or "image"
        raise UserInputError(f"cannot read {path}: not a readable {kind} file ({type(exc).__name__}); "
                             "check that it is an image and not damaged") from None


def _zarr_full_resolution(path: Path):
    """The array of a zarr store; of a group, the full-resolution level its OME-Zarr multiscales
    metadata names (the first dataset), else its only (or first, by name) array."""
    import zarr

    store = zarr.open(str(path), mode="r")
    if hasattr(store, "shape"):
        return store
    attrs = dict(store.attrs)
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales")
    if multiscales:
        level = multiscales[0]["datasets"][0]["path"]
        return store[level]
    arrays = sorted(store.arrays())
    if not arrays:
        raise UserInputError(f"{path} holds no array")
    return arrays[0][1]


def _read_png(path: Path, labels: bool) -> np.ndarray:
    """PNG pixels as the file stores them: 16-bit colour at 16 bits (Pillow reduces it to 8, so
    pypng reads those), palette images of labels as indices."""
    with open(path, "rb") as f:
        header = f.read(26)
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise UserInputError(f"cannot read {path}: not a PNG file; check that it is an image")
    bit_depth, colour_type = header[24], header[25]
    if bit_depth == 16 and colour_type in (2, 4, 6):  # RGB, grey + alpha, RGBA
        import png

        width, height, rows, info = png.Reader(filename=str(path)).read()
        return np.vstack([np.asarray(r, np.uint16) for r in rows]).reshape(height, width, info["planes"])
    if colour_type == 3 and labels:  # palette
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im)
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))
