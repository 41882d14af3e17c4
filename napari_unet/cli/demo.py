"""``napari-unet demo``: the bundled nuclei sample, headless (train, predict, score) or in napari
(``_qt.demo``, imported only then).

Headless: train on the sample's scribbles, predict its instances and report the foreground
Dice against its mask. No Qt or napari unless the viewer is asked for.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .predict import predict_file
from .progress import log, run_fit, time_budget


def run(args) -> int:
    """args: the ``demo`` subcommand's (headless, out_dir, time_budget, steps, device)."""
    if not args.headless:
        from .._qt.demo import run_viewer

        run_viewer()
        return 0
    from ..engine.disk import io
    from ..engine.model import modelfile
    from ..engine.prediction.metrics import dice
    from ..engine.training import train
    from ..sample_data import sample_paths

    paths = sample_paths()
    image, scribbles, truth = (io.read_image(paths[k]) for k in ("image", "scribbles", "mask"))
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = train.TrainConfig(steps=args.steps, time_budget=time_budget(args), device=args.device)
    model = run_fit(train.fit([image], [scribbles], config, unet_config=None))
    modelfile.save_model(model, out_dir / "model.pt")
    options = argparse.Namespace(tile_size=512, instances=True, min_size=30, probabilities=None, axes=None,
                                 dask_scheduler=None, measurements=None, pixel_size=None)
    predict_file(model, paths["image"], out_dir / "nuclei_masks.tif", options)
    score = dice(io.read_image(out_dir / "nuclei_masks.tif"), truth)
    log(f"foreground Dice against the sample's mask: {score:.3f}; files in {out_dir}/")
    return 0
