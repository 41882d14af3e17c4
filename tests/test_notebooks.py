"""The teaching notebooks (notebooks/*.ipynb) run top to bottom, offline, in their quick mode
(NAPARI_UNET_QUICK=1: short training runs), and are committed with their figures."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _figures(notebook) -> int:
    return sum("image/png" in out.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def test_there_are_three_notebooks_committed_with_their_figures():
    assert len(NOTEBOOKS) >= 3
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        assert _figures(notebook) >= 1, f"{path.name} was committed without its figures"
        errors = [out for cell in notebook.cells for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        assert not errors, f"{path.name} was committed with an error in its outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    monkeypatch.setenv("NAPARI_UNET_QUICK", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend: figures become outputs
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError naming the cell that failed
    assert _figures(notebook) >= 1
