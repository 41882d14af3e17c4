"""GPU check: how fast the CUDA path (bf16 autocast, channels_last, optionally torch.compile)
trains and predicts, as a fraction of the card's measured bf16 peak, and whether it gives the
same quality as the CPU path.

    python benchmarks/gpu_check.py --data DIR [--sections peak net loop parity budget predict volume compile]
    python benchmarks/gpu_check.py --data DIR --device cpu --sections parity   # the CPU column

Sections (each prints one JSON line, also appended to --out):
  peak     bf16 and tf32 matmul rate (8192^3, median of 10 after warm-up): the ceiling.
  net      the network alone (fixed batch, cross-entropy, fused AdamW), eager: steps/s,
           FLOPs per step (torch.utils.flop_counter), TFLOP/s and % of the bf16 peak, for the
           default model at the GPU training size and for larger batches / wider models.
  loop     napari-unet's real training loop (train.fit: numpy patch sampling, augmentation,
           CRF loss) with the GPU defaults, on a BBBC039 field.
  parity   on each field of --split: simulated scribbles (as in scribbles.py), a fixed number
           of steps with the CPU's batch and patch (8 x 96^2), predict, Dice / instance F1.
           Run once with --device cuda and once with --device cpu: same steps, same seeds.
  budget   the same fields with the GPU defaults and a 5-s budget (time to a useful mask).
  predict  whole-image prediction (iter_predict_labels, the CLI's path) on 2048^2 and 8192^2
           uint16: Mpx/s and peak GPU memory.
  volume   a 3D model on the synthetic volume of volumes.py for 10 s: Mvox/s and Dice.
  compile  the network alone under torch.compile (default mode), same sizes as `net`.
  wide     wider networks and larger patches as the GPU default: `loop` and `budget` for each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

DATA = Path(__file__).resolve().parents[2] / "shared/data/bbbc039"
SIZES = [  # (width, batch, patch): the GPU training default, then bigger work per step
    (16, 32, 128), (16, 64, 256), (32, 64, 256), (64, 32, 256)]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(dtype, n=8192, repeats=10) -> float:
    a, b = torch.randn(n, n, device="cuda", dtype=dtype), torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return 2 * n**3 / float(np.median(times))


def section_peak(args, state):
    torch.backends.cuda.matmul.allow_tf32 = True
    state["peak"] = matmul_rate(torch.bfloat16)
    return {"bf16 TFLOP/s": state["peak"] / 1e12, "tf32 TFLOP/s": matmul_rate(torch.float32) / 1e12}


def step_flops(net, x) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        net(x).float().sum().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def net_rate(width, batch, patch, device, compiled=False, seconds=3.0) -> dict:
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.device import autocast
    from napari_unet.engine.model.unet import SegmentationModel

    net = SegmentationModel.new(UNetConfig(width=width)).net.to(device, memory_format=torch.channels_last).train()
    x = torch.randn(batch, 1, patch, patch, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch, patch, patch), device=device)
    flops = step_flops(net, x)
    run = torch.compile(net) if compiled else net
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, fused=device.type == "cuda")

    def step():
        with autocast(device):
            logits = run(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(5):
        step()
    sync(device)
    warm = time.perf_counter() - t0
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            step()
        n += 10
        sync(device)
    rate = n / (time.perf_counter() - start)
    return {"width": width, "batch": batch, "patch": patch, "compiled": compiled, "warm-up s": warm,
            "steps/s": rate, "Mpx/s": rate * batch * patch**2 / 1e6, "GFLOP/step": flops / 1e9,
            "TFLOP/s": rate * flops / 1e12}


def section_net(args, state, compiled=False):
    sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes] if args.sizes else SIZES
    for width, batch, patch in sizes[:2] if compiled else sizes:  # each shape compiles anew (~20-45 s)
        r = net_rate(width, batch, patch, state["device"], compiled=compiled)
        if state.get("peak"):
            r["% bf16 peak"] = 100 * r["TFLOP/s"] * 1e12 / state["peak"]
        emit(args, {"section": "compile" if compiled else "net", **r})
    return None


def field(args, split, index):
    from napari_unet.engine.disk import io
    from napari_unet.engine.training.scribbles import simulate_scribbles

    paths = sorted(p for p in Path(args.data, split).glob("*.tif") if not p.stem.endswith("_masks"))
    image = io.read_image(paths[index])
    truth = io.read_image(paths[index].with_name(paths[index].stem + "_masks.tif"))
    return paths[index].stem, image, truth, simulate_scribbles(truth, seed=index)


def section_loop(args, state, width=None, **train_cfg):
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.unet import SegmentationModel
    from napari_unet.engine.training import train

    _, image, _, scribbles = field(args, "train", 0)
    cfg = train.TrainConfig(time_budget=10, device=args.device, **train_cfg)
    unet = UNetConfig(width=width) if width else UNetConfig()
    events = list(train.fit([image], [scribbles], cfg, unet_config=unet))
    times = [e.elapsed for e in events if isinstance(e, train.Step)]
    skip = min(20, len(times) // 4)
    rate = (len(times) - 1 - skip) / (times[-1] - times[skip])
    used = events[-1].summary["rounds"][-1]
    batch, patch = used["batch_size"], used["patch_size"]
    net = SegmentationModel.new(unet).net.to(state["device"], memory_format=torch.channels_last)
    flops = step_flops(net, torch.randn(batch, 1, patch, patch, device=state["device"]))
    out = {"steps": len(times), "steps/s": rate, "Mpx/s": rate * batch * patch**2 / 1e6,
           "net TFLOP/s": rate * flops / 1e12}
    if state.get("peak"):
        out["% bf16 peak"] = 100 * rate * flops / state["peak"]
    return out


def quality(args, width=None, **cfg) -> dict:
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.prediction.metrics import dice, instance_f1
    from napari_unet.engine.prediction.predict import predict_probabilities
    from napari_unet.engine.training import train
    from napari_unet.instances import instance_labels

    n = len([p for p in Path(args.data, args.split).glob("*.tif") if not p.stem.endswith("_masks")])
    dices, f1s, steps, secs = [], [], [], []
    for i in range(n):
        name, image, truth, scribbles = field(args, args.split, i)
        t = time.perf_counter()
        unet = UNetConfig(width=width) if width else None
        model = train.train([image], [scribbles], train.TrainConfig(device=args.device, **cfg), unet_config=unet)
        labels = instance_labels(predict_probabilities(model, image)).labels
        secs.append(time.perf_counter() - t)
        dices.append(dice(labels, truth))
        f1s.append(instance_f1(labels, truth))
        steps.append(model.summary["rounds"][-1]["steps"])
    return {"fields": n, "dice": float(np.mean(dices)), "f1": float(np.mean(f1s)),
            "mean steps": float(np.mean(steps)), "s per field": float(np.mean(secs)),
            "per field dice": [round(d, 3) for d in dices]}


def section_parity(args, state):
    return quality(args, steps=args.parity_steps, time_budget=None, batch_size=8, patch_size=96)


def section_budget(args, state):
    return quality(args, time_budget=5.0)


def section_wide(args, state):
    """Candidates for a GPU default with more work per step (26.5 % of the bf16 peak for the
    network alone at width 64, 256^2): the real loop's rate and the 5-s quality of each."""
    for width, batch, patch in [(16, 32, 256), (32, 32, 256), (64, 32, 256), (64, 16, 256)]:
        cfg = {"batch_size": batch, "patch_size": patch}
        emit(args, {"section": "wide", "width": width, "batch": batch, "patch": patch,
                    "loop": section_loop(args, state, width=width, **cfg),
                    "budget 5 s": quality(args, width=width, time_budget=5.0, **cfg)})
    return None


def section_predict(args, state):
    from napari_unet.engine.prediction import predict
    from napari_unet.engine.training import train

    _, image, truth, scribbles = field(args, "train", 0)
    model = train.train([image], [scribbles], train.TrainConfig(steps=20, time_budget=None, device=args.device))
    out = {}
    batch = 16 if state["device"].type == "cuda" else 4
    for side in (2048, 8192):
        reps = -(-side // np.array(image.shape))
        big = np.tile(image, reps)[:side, :side]
        list(predict.iter_predict_labels(model, big[:512, :512], batch_size=batch))  # warm-up
        if state["device"].type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        sync(state["device"])
        t = time.perf_counter()
        list(predict.iter_predict_labels(model, big, batch_size=batch))
        sync(state["device"])
        secs = time.perf_counter() - t
        out[f"{side} s"] = secs
        out[f"{side} Mpx/s"] = side * side / secs / 1e6
        if state["device"].type == "cuda":
            out[f"{side} GPU GiB"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def section_volume(args, state):
    from volumes import make_volume, run, scribble_planes

    volume, mask = make_volume(z_step=2.0, seed=0)
    ann = scribble_planes(mask, [5, 16, 27], seed=0)
    r = run(volume, mask, ann, 10.0, True, 2.0)
    return {**r, "Mvox/s": r.pop("vox_s") / 1e6}


def emit(args, record):
    line = json.dumps(record, default=float)
    print(line, flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.write(line + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--split", default="val")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--parity-steps", type=int, default=600)
    ap.add_argument("--sizes", nargs="+", metavar="W,B,P", help="width,batch,patch for net/compile")
    ap.add_argument("--sections", nargs="+",
                    default=["peak", "net", "loop", "predict", "parity", "volume", "budget", "compile"])
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", ""), "gpu_check.jsonl") if os.environ.get("OUT") else None)
    args = ap.parse_args(argv)

    from napari_unet.engine.model.device import pick_device

    state = {"device": pick_device(args.device)}
    name = torch.cuda.get_device_name() if state["device"].type == "cuda" else "cpu"
    emit(args, {"section": "machine", "torch": torch.__version__, "device": name,
                "threads": torch.get_num_threads()})
    sections = {"peak": section_peak, "net": section_net, "loop": section_loop, "parity": section_parity,
                "budget": section_budget, "predict": section_predict, "volume": section_volume,
                "compile": lambda a, s: section_net(a, s, compiled=True), "wide": section_wide}
    for key in args.sections:
        t = time.perf_counter()
        try:
            record = sections[key](args, state)
        except Exception as exc:  # noqa: BLE001 - one failing section must not hide the others
            record = {"error": f"{type(exc).__name__}: {exc}"}
        if record is not None:
            emit(args, {"section": key, **record, "wall s": time.perf_counter() - t})


if __name__ == "__main__":
    main()
