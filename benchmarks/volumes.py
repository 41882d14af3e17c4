"""2D U-Net on the painted planes against the 3D U-Net option, on a synthetic anisotropic volume.

A (Z, Y, X) volume of touching ellipsoidal "nuclei" (z step ``--z-step`` times the pixel size,
noise and uneven brightness), painted on three planes only (simulated scribbles, as in
scribbles.py). Both networks train for the same time budgets through the engine; the figure is
the foreground Dice over the whole volume, painted planes and unpainted ones separately, and the
training throughput (voxels per second). Synthetic because BBBC039 has no volumes.

    python benchmarks/volumes.py --budgets 10 30
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_volume(shape=(32, 256, 256), n=60, z_step=2.0, seed=0):
    """uint16 volume and its binary mask: ellipsoids of radius 9-14 px, z ``z_step`` times coarser."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(np.float32)
    mask = np.zeros(shape, bool)
    bright = np.zeros(shape, np.float32)
    for _ in range(n):
        r = rng.uniform(9, 14)
        c = rng.uniform([r / z_step, r, r], [shape[0] - r / z_step, shape[1] - r, shape[2] - r])
        ball = ((zz - c[0]) * z_step / r) ** 2 + ((yy - c[1]) / r) ** 2 + ((xx - c[2]) / (r * 0.8)) ** 2 <= 1
        mask |= ball
        bright[ball] = rng.uniform(0.5, 1.0)
    image = ndi.gaussian_filter(bright * 800, (0.5, 1.5, 1.5)) + 150 + rng.normal(0, 40, shape)
    return np.clip(image, 0, 65535).astype(np.uint16), mask


def scribble_planes(mask, planes, seed=0):
    from skimage import measure

    from napari_unet.engine.training.scribbles import simulate_scribbles

    ann = np.zeros(mask.shape, np.uint8)
    for z in planes:
        ann[z] = simulate_scribbles(measure.label(mask[z]), n_objects=6, n_strokes=6, seed=seed + int(z))
    return ann


def run(volume, mask, ann, budget, three_d, z_step):
    from napari_unet.engine import layout as ax
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.prediction import stacks as chunked
    from napari_unet.engine.training import train

    if three_d:
        images, anns = [volume], [ann]
        unet = UNetConfig(spatial_dims=3, voxel_size=(z_step, 1.0, 1.0))
    else:
        images, anns, _ = ax.annotated_planes(volume, ann, "ZYX", "none")
        unet = UNetConfig()
    t0 = time.perf_counter()
    model = train.train(images, anns, train.TrainConfig(time_budget=budget), unet_config=unet)
    r = model.summary["rounds"][-1]
    voxels = r["steps"] * r["batch_size"] * r["patch_size"] ** 2 * (r["patch_depth"] or 1)
    labels = list(chunked.iter_predict_stack(model, volume, "ZYX"))[-1].labels > 0
    painted = ann.reshape(len(ann), -1).any(1)
    dice = lambda p, t: 2 * np.sum(p & t) / max(p.sum() + t.sum(), 1)  # noqa: E731
    return {"dice": dice(labels, mask), "painted": dice(labels[painted], mask[painted]),
            "unpainted": dice(labels[~painted], mask[~painted]), "vox_s": voxels / r["seconds"],
            "steps": r["steps"], "wall": time.perf_counter() - t0}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", type=float, nargs="+", default=[10, 30])
    parser.add_argument("--z-step", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; volume 32x256x256, z step {args.z_step}, "
          "scribbles on planes 8, 16, 24")
    print(f"{'model':>6} {'budget':>7} {'steps':>6} {'Mvox/s':>7} {'Dice all':>9} {'painted':>8} {'unpainted':>10}")
    for budget in args.budgets:
        for three_d in (False, True):
            rows = []
            for seed in args.seeds:
                volume, mask = make_volume(z_step=args.z_step, seed=seed)
                ann = scribble_planes(mask, (8, 16, 24), seed)
                rows.append(run(volume, mask, ann, budget, three_d, args.z_step))
            m = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
            print(f"{'3D' if three_d else '2D':>6} {budget:>6.0f}s {m['steps']:>6.0f} {m['vox_s'] / 1e6:>7.2f} "
                  f"{m['dice']:>9.3f} {m['painted']:>8.3f} {m['unpainted']:>10.3f}", flush=True)


if __name__ == "__main__":
    main()
