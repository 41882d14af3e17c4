"""napari-unet against MONAI's BasicUNet: training throughput, prediction speed and memory, quality.

    python benchmarks/vs_monai.py throughput [--seconds 15]
    python benchmarks/vs_monai.py predict [--sizes 2048 8192]
    python benchmarks/vs_monai.py quality [--budget 30] [--split val]

throughput: this machine's fp32 (and, with AMX, bf16) matmul peak (best of square matmuls), then for each
  network the FLOPs of one training step (forward + backward, counted with
  torch.utils.flop_counter) and its achieved rate, (a) network alone on a fixed
  batch and (b) inside napari-unet's real training loop (patch sampling,
  augmentation, CRF loss) on a BBBC039 field, as pixels/s and % of peak.
predict: whole processes on synthetic uint16 images tiled from BBBC039 fields:
  `napari-unet predict MODEL IMG --out MASK` vs `_baseline.py predict` (MONAI
  sliding_window_inference, roi 256, overlap 0.25, gaussian), wall time and peak
  resident memory (ru_maxrss of the child), each in a fresh process.
quality: on each field, scribbles as in scribbles.py, both networks trained by the
  same loop for --budget seconds; napari-unet predicts with its tiler, the baseline
  with sliding_window_inference; foreground Dice and instance F1 (same instance step).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _baseline import BasicUNetNet, new_baseline_model, sliding_window_labels  # noqa: E402
from _timing import timed_process  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared/data/bbbc039"


def matmul_peak(sizes=(1024, 2048, 3072), repeats=5, dtype=torch.float32) -> float:
    """Best matmul rate (FLOP/s) in ``dtype`` with the threads torch uses."""
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        for _ in range(repeats):
            t = time.perf_counter()
            a @ b
            best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def step_flops(net, batch: int, patch: int) -> int:
    """FLOPs of forward + backward of ``net`` on a (batch, 1, patch, patch) input."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(batch, 1, patch, patch).contiguous(memory_format=torch.channels_last)
    net.train()
    with FlopCounterMode(display=False) as counter:
        net(x).sum().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def net_only_rate(net, batch: int, patch: int, seconds: float) -> float:
    """Training steps/s of the network alone (fixed batch, cross-entropy, AdamW)."""
    net = net.to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    x = torch.randn(batch, 1, patch, patch).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch, patch, patch))
    for _ in range(3):
        _step(net, opt, x, y)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _step(net, opt, x, y)
        n += 1
    return n / (time.perf_counter() - start)


def _step(net, opt, x, y):
    from napari_unet.engine.model.device import autocast

    with autocast(torch.device("cpu")):
        logits = net(x)
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def loop_rate(model, image, scribbles, seconds: float, batch: int, patch: int) -> float:
    """Training steps/s inside napari_unet.train.fit (sampling, augmentation, CRF loss), after warm-up."""
    from napari_unet.engine.training import train

    cfg = train.TrainConfig(time_budget=seconds, batch_size=batch, patch_size=patch, device="cpu")
    times = [e.elapsed for e in train.fit([image], [scribbles], cfg, model=model) if isinstance(e, train.Step)]
    skip = min(5, len(times) // 4)
    return (len(times) - 1 - skip) / (times[-1] - times[skip])


def field(split="train", index=0):
    from napari_unet.engine.disk import io
    from napari_unet.engine.training.scribbles import simulate_scribbles

    paths = sorted(p for p in (DATA / split).glob("*.tif") if not p.stem.endswith("_masks"))
    image = io.read_image(paths[index])
    truth = io.read_image(paths[index].with_name(paths[index].stem + "_masks.tif"))
    return paths[index], image, truth, simulate_scribbles(truth, seed=index)


def run_throughput(args):
    """Both CPU precisions where the CPU has bf16 matrix units (AMX), else fp32 only."""
    import os

    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.device import configure_cpu_threads, cpu_bf16
    from napari_unet.engine.model.unet import SegmentationModel

    configure_cpu_threads()
    precisions = ["fp32", "bf16"] if cpu_bf16() else ["fp32"]
    peaks = {"fp32": matmul_peak(), "bf16": matmul_peak(dtype=torch.bfloat16) if "bf16" in precisions else None}
    print(f"machine: {torch.get_num_threads()} threads, matmul peak fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s"
          + (f", bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s" if peaks["bf16"] else ""))
    _, image, _, scribbles = field("train", 0)
    b, p = args.batch, args.patch
    rows = []
    for precision in precisions:
        os.environ["NAPARI_UNET_CPU_BF16"] = "1" if precision == "bf16" else "0"
        for name, make in [("napari-unet UNet (16-128, depth 3)", lambda: SegmentationModel.new(UNetConfig())),
                           ("MONAI BasicUNet (32-256, depth 4)", new_baseline_model)]:
            torch.manual_seed(0)
            model = make()
            flops = step_flops(model.net, b, p)
            alone = net_only_rate(model.net, b, p, args.seconds)
            in_loop = loop_rate(model, image, scribbles, args.seconds, b, p)
            for what, rate in [("network alone", alone), ("training loop", in_loop)]:
                rows.append([name, precision, what, f"{flops / 1e9:.2f}", f"{rate:.2f}",
                             f"{rate * b * p * p / 1e6:.2f}", f"{rate * flops / 1e9:.1f}",
                             f"{100 * rate * flops / peaks[precision]:.0f}%"])
    os.environ.pop("NAPARI_UNET_CPU_BF16")
    print(f"\nbatch {b} x {p}^2, channels_last; % of the matmul peak of the same precision\n")
    _table(["network", "precision", "measured", "GFLOP/step", "steps/s", "Mpx/s", "GFLOP/s", "% of peak"], rows)


def _make_big_image(side: int) -> np.ndarray:
    """(side, side) uint16 tiled from the BBBC039 train fields (real nuclei everywhere)."""
    from napari_unet.engine.disk import io

    paths = sorted(p for p in (DATA / "train").glob("*.tif") if not p.stem.endswith("_masks"))
    fields = [io.read_image(p) for p in paths]
    fh, fw = fields[0].shape
    out = np.empty((side, side), np.uint16)
    k = 0
    for y in range(0, side, fh):
        for x in range(0, side, fw):
            f = fields[k % len(fields)]
            k += 1
            out[y:y + fh, x:x + fw] = f[: min(fh, side - y), : min(fw, side - x)]
    return out


def run_predict(args):
    import tifffile

    from napari_unet.engine.model import modelfile
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.unet import SegmentationModel

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        ours, theirs = tmp / "ours.pt", tmp / "theirs.pt"
        modelfile.save_model(SegmentationModel.new(UNetConfig()), ours)  # weights do not change the cost
        torch.save(BasicUNetNet().state_dict(), theirs)
        for side in args.sizes:
            img = tmp / f"img{side}.tif"
            tifffile.imwrite(img, _make_big_image(side))
            mpx = side * side / 1e6
            cmd_ours = [sys.executable, "-m", "napari_unet.cli", "predict", ours, img, "--out", tmp / "a.tif"]
            cmd_theirs = [sys.executable, str(Path(__file__).with_name("_baseline.py")), "predict",
                          theirs, img, tmp / "b.tif"]
            for name, cmd in [("napari-unet predict", cmd_ours), ("MONAI sliding_window_inference", cmd_theirs)]:
                if name.startswith("MONAI") and side > args.baseline_max:
                    rows.append([f"{side}^2", name, "skipped (--baseline-max)", "", ""])
                    continue
                wall, rss = timed_process(cmd)
                rows.append([f"{side}^2", name, f"{wall:.1f}", f"{mpx / wall:.2f}", f"{rss:.2f}"])
                print(rows[-1], file=sys.stderr, flush=True)
            img.unlink()
    _table(["image", "process", "wall s", "Mpx/s", "peak RSS GiB"], rows)


def run_quality(args):
    from napari_unet import instances
    from napari_unet.engine.prediction import predict
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.training import train

    n = len([p for p in (DATA / args.split).glob("*.tif") if not p.stem.endswith("_masks")])
    rows = []
    for i in range(args.limit or n):
        path, image, truth, scribbles = field(args.split, i)
        row = [path.stem]
        for name in ("ours", "baseline"):
            torch.manual_seed(0)
            model = None if name == "ours" else new_baseline_model()
            cfg = train.TrainConfig(time_budget=args.budget, device="cpu")
            model = train.train([image], [scribbles], cfg, model=model)
            if name == "ours":
                sem = instances.semantic_labels(predict.predict_probabilities(model, image))
            else:
                sem = sliding_window_labels(model.net, image)
            inst = instances.instances_from_semantic(sem, 1).labels
            row += [f"{dice(inst, truth):.3f}", f"{instance_f1(inst, truth):.3f}", str(model.summary["total_steps"])]
        rows.append(row)
        print(row, file=sys.stderr, flush=True)
    means = ["**mean**"] + [f"**{np.mean([float(r[k]) for r in rows]):.3f}**" for k in range(1, 7)]
    _table(["field", "ours dice", "ours f1", "ours steps", "basicunet dice", "basicunet f1", "basicunet steps"],
           rows + [means])


def _table(header, rows):
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["throughput", "predict", "quality"])
    ap.add_argument("--seconds", type=float, default=15.0, help="throughput: seconds per measurement")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    ap.add_argument("--baseline-max", type=int, default=8192, help="predict: largest side run with the baseline")
    ap.add_argument("--budget", type=float, default=30.0, help="quality: training seconds per field and network")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int)
    args = ap.parse_args(argv)
    {"throughput": run_throughput, "predict": run_predict, "quality": run_quality}[args.part](args)


if __name__ == "__main__":
    main()
