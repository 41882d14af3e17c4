"""npe2 writers for Labels layers: TIFF, PNG, NPY and zarr through the engine's mask export."""

from __future__ import annotations

from typing import Any


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write one Labels layer's data; the suffix picks the format."""
    from ..engine.disk.io import write_mask

    return [str(write_mask(path, data))]
