"""The teaching notebooks (notebooks/*.ipynb) run top to bottom, offline, in their quick mode
(NAPARI_UNET_QUICK=1: short training runs), and are committed with their figures."""

from __future__ import annotations

import asyncio
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


@pytest.fixture(scope="module")
def executed() -> dict:
    """Every notebook run at once, each in its own kernel with one thread (43 s here, against 71 s
    one after the other with two threads each): {path: (notebook with its outputs, error or None)}."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NAPARI_UNET_QUICK", "1")
        patch.setenv("OMP_NUM_THREADS", "1")  # the kernels read it when they import torch
        patch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend: figures become outputs
        return asyncio.run(_execute_all(NOTEBOOKS))


async def _execute_all(paths) -> dict:
    notebooks = [nbformat.read(path, as_version=4) for path in paths]
    clients = [nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                       resources={"metadata": {"path": str(path.parent)}})
               for path, notebook in zip(paths, notebooks)]
    errors = await asyncio.gather(*(client.async_execute() for client in clients), return_exceptions=True)
    return {path: (notebook, error if isinstance(error, BaseException) else None)
            for path, notebook, error in zip(paths, notebooks, errors)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, executed):
    notebook, error = executed[path]
    if error is not None:
        raise error  # a CellExecutionError names the cell that failed
    assert _figures(notebook) >= 1
