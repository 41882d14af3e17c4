"""An image larger than is comfortable: `napari-unet predict` on a 20000 x 20000 uint16 zarr.

    python benchmarks/huge.py [--side 20000] [--scheduler local-cluster] [--model M.pt --instances]

Builds a SIDE x SIDE uint16 zarr (chunks 1024^2) tiled from the BBBC039 fields, band by
band (never whole in memory), then runs `napari-unet predict MODEL IN.zarr --out OUT.zarr`
as a separate process and prints its wall time, megapixels per second and peak resident
memory (ru_maxrss). With --scheduler local-cluster the same command runs with
--dask-scheduler on a LocalCluster of 2 single-thread workers (their memory is not
in the client's figure; the cluster reports it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed_process  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared/data/bbbc039"


def build_zarr(path: Path, side: int):
    import zarr

    from napari_unet.engine.disk import io

    fields = [io.read_image(p) for p in sorted((DATA / "train").glob("*.tif")) if not p.stem.endswith("_masks")]
    fh, fw = fields[0].shape
    arr = zarr.open_array(str(path), mode="w", shape=(side, side), chunks=(1024, 1024), dtype="u2")
    k = 0
    for y in range(0, side, fh):
        band = np.empty((min(fh, side - y), side), np.uint16)
        for x in range(0, side, fw):
            f = fields[k % len(fields)]
            k += 1
            band[:, x:x + fw] = f[: band.shape[0], : min(fw, side - x)]
        arr[y:y + band.shape[0]] = band
    return arr


def main(argv=None):
    import torch

    from napari_unet.engine.model import modelfile
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.unet import SegmentationModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=20000)
    ap.add_argument("--scheduler", choices=["none", "local-cluster"], default="none")
    ap.add_argument("--model", help="a trained model file (default: an untrained network; speed and memory "
                                    "do not depend on the weights, instances do)")
    ap.add_argument("--instances", action="store_true", help="predict with --instances (not with a cluster)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = args.model or modelfile.save_model(SegmentationModel.new(UNetConfig()), tmp / "m.pt")
        t = time.perf_counter()
        build_zarr(tmp / "in.zarr", args.side)
        print(f"built {args.side}^2 uint16 zarr in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        cmd = [sys.executable, "-m", "napari_unet.cli", "predict", model, tmp / "in.zarr", "--out", tmp / "out.zarr"]
        cmd += ["--instances"] if args.instances else []
        cluster = None
        if args.scheduler == "local-cluster":
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None)
            cmd += ["--dask-scheduler", cluster.scheduler_address]
        wall, rss = timed_process(cmd)
        if cluster is not None:
            cluster.close()
        import zarr

        out = zarr.open_array(str(tmp / "out.zarr"), mode="r")
        fg = float(np.mean(out[::50, ::50] > 0))
        mpx = args.side**2 / 1e6
        what = "instances" if args.instances else "semantic"
        print("| image | output | scheduler | wall s | Mpx/s | peak RSS GiB (predict process) | foreground fraction |")
        print("|---|---|---|---|---|---|---|")
        print(f"| {args.side}^2 uint16 zarr | {what} | {args.scheduler} | {wall:.0f} | {mpx / wall:.2f} | {rss:.2f} "
              f"| {fg:.2f} |")


if __name__ == "__main__":
    main()
