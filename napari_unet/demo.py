"""``napari-unet demo``: the bundled nuclei sample, in napari with the widget or headless.

Headless: train on the sample's scribbles, predict its instances and report the foreground
Dice against its mask. No Qt or napari unless the viewer is asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli import _log, _run_fit, predict_file
from .errors import UserInputError


def run(args) -> int:
    """args: the ``demo`` subcommand's (headless, out_dir, time_budget, device)."""
    if not args.headless:
        import napari

        open_viewer()
        napari.run()
        return 0
    from . import io, train
    from ._sample_data import sample_paths
    from .metrics import dice

    paths = sample_paths()
    image, scribbles, truth = (io.read_image(paths[k]) for k in ("image", "scribbles", "mask"))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = train.TrainConfig(time_budget=args.time_budget, device=args.device)
    model = _run_fit(train.fit([image], [scribbles], config, unet_config=None))
    io.save_model(model, out_dir / "model.pt")
    ns = argparse.Namespace(tile_size=512, instances=True, min_size=30, probabilities=None, axes=None,
                            dask_scheduler=None)
    predict_file(model, paths["image"], out_dir / "nuclei_masks.tif", ns)
    score = dice(io.read_image(out_dir / "nuclei_masks.tif"), truth)
    _log(f"foreground Dice against the sample's mask: {score:.3f}; files in {out_dir}/")
    return 0


def open_viewer():
    """(viewer, widget): napari with the sample, its scribbles and the U-Net widget."""
    import importlib.util

    if importlib.util.find_spec("napari") is None:
        raise UserInputError("napari is not installed; pip install 'napari-unet[all]' or use demo --headless")
    from ._trainer_process import prestart

    prestart()  # torch loads in the trainer while napari loads and builds its window
    import napari

    viewer = napari.Viewer(title="napari-unet demo")
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    return viewer, widget
