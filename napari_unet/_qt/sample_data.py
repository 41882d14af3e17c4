"""npe2 sample data: one real BBBC039 nuclei field, with and without pre-painted scribbles.

BBBC039v1, Caicedo et al. 2019, Broad Bioimage Benchmark Collection (Ljosa et al. 2012), CC0.
No torch import here: opening a sample stays fast.
"""

from __future__ import annotations

from pathlib import Path

from ..sample_data import sample_paths


def _read(path: Path):
    import tifffile

    return tifffile.imread(path)


def make_nuclei():
    """napari sample 'nuclei': the image layer."""
    return [(_read(sample_paths()["image"]), {"name": "nuclei", "colormap": "gray"}, "image")]


def make_nuclei_scribbles():
    """napari sample 'nuclei_scribbles': the image plus an annotation Labels layer to train on.

    Starts the trainer process too (no torch import here): this sample is opened to train.
    """
    from ..trainer.process import prestart

    prestart()
    paths = sample_paths()
    return [
        (_read(paths["image"]), {"name": "nuclei", "colormap": "gray"}, "image"),
        (_read(paths["scribbles"]).astype("uint8"), {"name": "nuclei annotations"}, "labels"),
    ]
