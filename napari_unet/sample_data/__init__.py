"""The bundled sample: one real BBBC039 nuclei field, its scribbles and its instance mask.

BBBC039v1, Caicedo et al. 2019, Broad Bioimage Benchmark Collection (Ljosa et al. 2012), CC0.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent


def sample_paths() -> dict[str, Path]:
    """Paths of the bundled files: image (uint16), scribbles (annotations), mask (instances)."""
    return {
        "image": SAMPLE_DIR / "nuclei.tif",
        "scribbles": SAMPLE_DIR / "nuclei_scribbles.tif",
        "mask": SAMPLE_DIR / "nuclei_masks.tif",
    }
