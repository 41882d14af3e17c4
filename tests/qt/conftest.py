"""Fixtures of the GUI tests: a real viewer with the U-Net widget docked."""

import pytest


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    yield viewer, widget
    widget.close_trainer()
