"""The training loop against the network alone (issue #46), on this CPU, in one run.

  rate     steps/s of the network alone (a fixed batch, cross-entropy, AdamW: ``vs_monai.net_only_rate``)
           and of ``train.fit``'s loop on a BBBC039 field's scribbles (sampling, augmentation, the
           losses, the events), with patches cut on the device (``sampling.DeviceSampler``) and on
           the host (the earlier loop); fp32, and bf16 where the CPU has AMX.
  quality  foreground Dice and instance F1 on ``bbbc039/val`` after the same steps with either sampler
           (the same scribbles and seeds), and the seconds each loop takes to reach Dice 0.95
           (``--target``), scored every ``--every`` steps.

    python benchmarks/loop.py                       # rates, ~1 min
    python benchmarks/loop.py --quality --limit 4   # + quality and time to Dice 0.95 on 4 val fields
    python benchmarks/loop.py --quality --seeds 3   # 3 training seeds per field: is a difference noise?
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "bbbc039"


def loop_rate(image, scribbles, seconds: float, batch: int, patch: int, device_sampling: bool) -> float:
    """Steps/s of ``train.fit`` after warm-up (a new network: the CRF term included)."""
    from napari_unet.engine.training import train

    torch.manual_seed(0)
    cfg = train.TrainConfig(time_budget=seconds, batch_size=batch, patch_size=patch, device="cpu",
                            device_sampling=device_sampling)
    times = [e.elapsed for e in train.fit([image], [scribbles], cfg) if isinstance(e, train.Step)]
    skip = min(5, len(times) // 4)
    return (len(times) - 1 - skip) / (times[-1] - times[skip])


def rates(args) -> None:
    sys.path.insert(0, str(HERE))
    from vs_monai import field, net_only_rate

    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.device import configure_cpu_threads, cpu_bf16
    from napari_unet.engine.model.unet import SegmentationModel

    threads = configure_cpu_threads(args.threads)
    _, image, _, scribbles = field("train", 0)
    precisions = ["fp32", "bf16"] if cpu_bf16() else ["fp32"]
    print(f"{threads} threads; batch {args.batch} x {args.patch}^2")
    print("| precision | network alone | loop, device sampling | loop, host sampling |\n|---|---|---|---|")
    for precision in precisions:
        os.environ["NAPARI_UNET_CPU_BF16"] = "1" if precision == "bf16" else "0"
        torch.manual_seed(0)
        alone = net_only_rate(SegmentationModel.new(UNetConfig()).net, args.batch, args.patch, args.seconds)
        device = loop_rate(image, scribbles, args.seconds, args.batch, args.patch, True)
        host = loop_rate(image, scribbles, args.seconds, args.batch, args.patch, False)
        print(f"| {precision} | {alone:.2f} steps/s | {device:.2f} ({100 * device / alone:.0f} %) | "
              f"{host:.2f} ({100 * host / alone:.0f} %) |")
    os.environ.pop("NAPARI_UNET_CPU_BF16", None)


def quality(args) -> None:
    from napari_unet.engine.disk import io
    from napari_unet.engine.prediction import pipeline
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training import train
    from napari_unet.engine.training.scribbles import simulate_scribbles

    paths = sorted(p for p in (DATA / "val").glob("*.tif") if not p.stem.endswith("_masks"))[: args.limit]
    rows = {True: [], False: []}
    for (i, path), run in itertools.product(enumerate(paths), range(args.seeds)):
        image = io.read_image(path)
        truth = io.read_image(path.with_name(path.stem + "_masks.tif"))
        scribbles = simulate_scribbles(truth, seed=i)
        for device_sampling in (True, False):
            cfg = train.TrainConfig(steps=args.steps, time_budget=None, seed=i + 100 * run,
                                    device_sampling=device_sampling, threads=args.threads)
            reached, start, model = None, None, None
            for event in train.fit([image], [scribbles], cfg):
                if isinstance(event, train.Started):
                    model, start = event.model, time.perf_counter()
                elif isinstance(event, train.Step) and event.step % args.every == 0 and reached is None:
                    paused = time.perf_counter()
                    train.recalibrate_batchnorm(model.net, *_sampler_of(model, image, scribbles), torch.device("cpu"))
                    model.net.eval()
                    d = dice(pipeline.predict_image(model, image, instances=False).labels, truth)
                    model.net.train()
                    start += time.perf_counter() - paused  # scoring is not training time
                    if d >= args.target:
                        reached = event.elapsed
            labels = pipeline.predict_image(model, image, instances=True).labels
            rows[device_sampling].append((dice(labels, truth), instance_f1(labels, truth), reached))
            print(path.stem, "device" if device_sampling else "host", [round(v, 3) if v else v for v in rows[device_sampling][-1]],
                  file=sys.stderr, flush=True)
    print(f"\nbbbc039/val, {len(paths)} fields x {args.seeds} seed(s), {args.steps} steps from scribbles (fp32 or bf16 as this CPU runs)")
    print("| sampling | Dice | F1 | seconds to Dice %.2f (fields that got there) |\n|---|---|---|---|" % args.target)
    for device_sampling, rs in rows.items():
        times = [r[2] for r in rs if r[2] is not None]
        print(f"| {'device' if device_sampling else 'host'} | {np.mean([r[0] for r in rs]):.3f} | "
              f"{np.mean([r[1] for r in rs]):.3f} | {np.mean(times) if times else float('nan'):.1f} ({len(times)}) |")


def _sampler_of(model, image, scribbles):
    """A host sampler of the image, for ``recalibrate_batchnorm`` while scoring."""
    from napari_unet.engine import convert
    from napari_unet.engine.training import sampling

    return (sampling.PatchSampler([convert.prepare(image[None])], [scribbles.astype(np.int16)], (96, 96),
                                  np.random.default_rng(0)),)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=25)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--limit", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=1, help="training seeds per field (the scribbles stay)")
    args = ap.parse_args(argv)
    rates(args)
    if args.quality:
        quality(args)


if __name__ == "__main__":
    main()
