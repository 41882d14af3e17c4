"""Confluent tissue: instances when one cluster of touching nuclei covers the whole plane.

    python benchmarks/confluent.py [--side 8192] [--no-baseline]

A synthetic SIDE x SIDE semantic plane: rows of touching discs (radius 10-12.5 px, each its
own size) joined by a column of them at the left, so that every nucleus touches the next
and the background still reaches the border (no hole to fill). Two ways to its instances,
each in a fresh process, side by side: napari-unet's `instances_from_semantic` (windows; a
cluster this large is split a tile's window at a time), reading the plane from a zarr array
and writing the ids into one, and the baseline, the same split of the whole mask at once
(what napari-unet did with any cluster larger than a window before: its box was split
whole). Prints wall seconds, peak resident memory and whether the two give the same objects.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _timing import timed_process  # noqa: E402


def confluent_plane(side: int, seed: int = 0) -> np.ndarray:
    """(side, side) uint8 semantic labels: 1 = nucleus, one cluster over the plane."""
    from scipy import ndimage as ndi

    centres = np.zeros((side, side), bool)
    centres[12::30, 12::19] = True  # rows of touching discs...
    centres[12::19, 12] = True  # ...joined at the left
    distance, nearest = ndi.distance_transform_edt(~centres, return_indices=True)
    del centres
    radii = np.random.default_rng(seed).uniform(10, 12.5, size=(side, side)).astype(np.float32)
    return (distance <= radii[nearest[0], nearest[1]]).astype(np.uint8)


def run(mode: str, plane: str, out: str) -> None:
    """One way to the instances of the plane in ``plane`` (.zarr), written to ``out`` (.zarr).

    The windows read the plane and write the ids a window at a time (zarr arrays on disk, as
    `napari-unet predict IMG.zarr --out OUT.zarr` does); the baseline needs them whole."""
    import zarr

    semantic = zarr.open_array(plane, mode="r")
    if mode == "windows":
        from napari_unet.instances import instances_from_semantic

        ids = zarr.open_array(out, mode="w", shape=semantic.shape, chunks=semantic.chunks, dtype="u4")
        instances_from_semantic(semantic, 1, out=ids)
    else:
        semantic = semantic[:]
        from scipy import ndimage as ndi

        from napari_unet.instances.split import SplitParams as _SplitParams
        from napari_unet.instances.split import reach_of as _reach
        from napari_unet.instances.split import split_region as _split_region

        params = _SplitParams(1, 30, 1.0, 2.0, True, None, _reach(2.0, None, 2))
        labels = _split_region(ndi.binary_fill_holes(semantic == 1), params)
        zarr.open_array(out, mode="w", shape=labels.shape, chunks=(1024, 1024), dtype="u4")[:] = labels


def same_objects(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """(objects in a, in b, objects of a that are exactly an object of b)."""
    both = a.ravel().astype(np.int64) * (int(b.max()) + 1) + b.ravel()
    joint = np.unique(both[both > 0])
    pairs = np.stack([joint // (int(b.max()) + 1), joint % (int(b.max()) + 1)])
    pairs = pairs[:, (pairs[0] > 0) & (pairs[1] > 0)]
    one_to_one = (np.bincount(pairs[0])[pairs[0]] == 1) & (np.bincount(pairs[1])[pairs[1]] == 1)
    return int(a.max()), int(b.max()), int(one_to_one.sum())


def main(argv=None):
    import zarr
    from scipy import ndimage as ndi

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=8192)
    ap.add_argument("--no-baseline", action="store_true", help="skip the whole-mask split (111 bytes a pixel)")
    ap.add_argument("_run", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._run:
        return run(*args._run)
    with tempfile.TemporaryDirectory() as tmp:
        plane = Path(tmp) / "plane.zarr"
        semantic = confluent_plane(args.side)
        zarr.open_array(plane, mode="w", shape=semantic.shape, chunks=(1024, 1024), dtype="u1")[:] = semantic
        print(f"{args.side}^2 confluent plane: {ndi.label(semantic)[1]} cluster(s), {semantic.mean():.0%} nuclei")
        del semantic
        results = {}
        for mode in ["windows"] + ([] if args.no_baseline else ["whole mask"]):
            out = Path(tmp) / f"{mode.replace(' ', '_')}.zarr"
            wall, rss = timed_process([sys.executable, __file__, "--", mode, plane, out])
            results[mode] = zarr.open_array(out, mode="r")[:]
            print(f"{mode:>10}: {wall:7.1f} s  peak {rss:5.2f} GiB  {results[mode].max()} objects", flush=True)
        if len(results) == 2:
            n_windows, n_whole, same = same_objects(results["windows"], results["whole mask"])
            print(f"the same objects: {same} of {n_whole} (windows found {n_windows})")


if __name__ == "__main__":
    main()
