"""The viewer side of ``napari-unet demo``: napari with the nuclei sample, its scribbles and the widget."""

from __future__ import annotations

from ..errors import UserInputError


def open_viewer():
    """(viewer, widget): napari with the sample, its scribbles and the U-Net widget."""
    import importlib.util

    if importlib.util.find_spec("napari") is None:
        raise UserInputError("napari is not installed; pip install 'napari-unet[all]' or use demo --headless")
    from ..trainer.process import prestart

    prestart()  # torch loads in the trainer while napari loads and builds its window
    import napari

    viewer = napari.Viewer(title="napari-unet demo")
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    return viewer, widget


def run_viewer() -> None:
    """Open the demo viewer and run napari's event loop until the window closes."""
    import napari

    open_viewer()
    napari.run()
