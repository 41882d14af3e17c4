"""GPU check: the CUDA path (bf16 autocast, channels_last) trains and predicts, with the same
quality as the CPU path, and how fast.

    python benchmarks/gpu_check.py [--budget 30]

Prints: device, steps/s and Mpx/s for the default (CPU-sized) and a GPU-sized batch, foreground
Dice / instance F1 on the bundled sample, and prediction Mpx/s on 2048^2 and 8192^2 uint16 images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_unet import io, train
from napari_unet._sample_data import sample_paths
from napari_unet.instances import instance_labels
from napari_unet.metrics import dice, instance_f1
from napari_unet.predict import predict_probabilities


def run(device: str, budget: float, **cfg) -> dict:
    paths = sample_paths()
    image, scribbles, truth = (io.read_image(paths[k]) for k in ("image", "scribbles", "mask"))
    model = train.train([image], [scribbles], train.TrainConfig(time_budget=budget, device=device, **cfg))
    r = model.summary["rounds"][-1]
    labels = instance_labels(predict_probabilities(model, image)).labels
    px = r["steps"] * r["batch_size"] * r["patch_size"] ** 2 / r["seconds"]
    return {"device": device, **cfg, "steps": r["steps"], "steps/s": round(r["steps"] / r["seconds"], 1),
            "Mpx/s": round(px / 1e6, 2), "dice": round(dice(labels, truth), 4),
            "f1": round(instance_f1(labels, truth), 4), "model": model}


def predict_speed(model, size: int) -> str:
    rng = np.random.default_rng(0)
    image = (rng.random((size, size)) * 4000).astype(np.uint16)
    predict_probabilities(model, image[:512, :512])  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    predict_probabilities(model, image, batch_size=16 if model.device.type == "cuda" else 4)
    secs = time.perf_counter() - t
    return f"predict {size}x{size}: {secs:.2f} s = {size * size / secs / 1e6:.1f} Mpx/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=30.0)
    args = ap.parse_args()
    print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
          torch.cuda.get_device_name() if torch.cuda.is_available() else "")
    results = [run("cuda", args.budget), run("cuda", args.budget, batch_size=32, patch_size=128)]
    for r in results:
        print({k: v for k, v in r.items() if k != "model"})
    model = results[0]["model"]
    for size in (2048, 8192):
        print(predict_speed(model, size))
        if torch.cuda.is_available():
            print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
