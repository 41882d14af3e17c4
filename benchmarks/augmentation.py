"""What each part of the wide augmentation adds (issue #24): the nuclei model retrained without one part
at a time, all with the same seed and step count, then scored with no strokes on BBBC039 ``val/`` as it
is and made to look like other microscopes (the conditions of ``bundled.py``).

Variants: ``wide`` (everything: inversion, gamma / contrast / brightness, blur, noise, scales 0.6-1.6),
``wide`` without each of those parts, and ``mild`` (what a few strokes on one image get: flips, turns,
a small affine, a mild intensity jitter). Each trains with ``tools/train_bundled_model.py nuclei`` in its own
process; a model already in ``--out`` is reused, so a stopped run resumes.

    python benchmarks/augmentation.py                      # 1500 steps each: ~7 min per variant on 2 CPU cores
    python benchmarks/augmentation.py --steps 300 --out /tmp/aug-quick
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "wide": [],
    "wide-no-invert": ["--without", "invert"],
    "wide-no-gamma": ["--without", "gamma"],
    "wide-no-blur": ["--without", "blur"],
    "wide-no-noise": ["--without", "noise"],
    "wide-no-scale": ["--without", "scale"],
    "mild": ["--augment", "mild"],
}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--out", default="/tmp/napari-unet-augmentation", help="folder for the variants' models")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "bbbc039" / "val"))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in args.variants:
        path = paths[name] = out / f"{name}-{args.steps}.pt"
        if not path.exists():
            print(f"training {name} ({args.steps} steps)", flush=True)
            subprocess.run([sys.executable, str(ROOT / "tools" / "train_bundled_model.py"), "nuclei",
                            "--steps", str(args.steps),
                            "--checkpoint-every", "0", "--out", str(path), *VARIANTS[name]], check=True)

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bundled import no_strokes

    from napari_unet.engine.model import modelfile

    no_strokes({name: modelfile.load_model(str(path)) for name, path in paths.items()}, Path(args.data))


if __name__ == "__main__":
    main()
