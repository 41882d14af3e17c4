"""Refresh the README's screenshots: drives napari with the U-Net widget on the nuclei sample.

    QT_API=pyqt6 xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py

(PyQt6: under PyQt5 napari shows a deprecation notice over the canvas.)

Writes docs/images/{1_start,2_training,3_trained,6_regions,4_corrections}.png (whole window), and
5_volume.png: the 3D U-Net on a synthetic anisotropic volume (benchmarks/volumes.py), shown on
a plane that was never painted.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QEventLoop, QTimer

OUT = Path(__file__).parent / "images"
os.environ.setdefault("NAPARI_UNET_AUTOSAVE", tempfile.mkdtemp())  # no autosave of earlier sessions on show


def wait_for(signal, timeout_ms: int = 120_000) -> None:
    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec_()
    signal.disconnect(loop.quit)


def settle(ms: int = 300) -> None:
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec_()


def shot(viewer, name: str) -> None:
    settle()
    viewer.screenshot(str(OUT / f"{name}.png"), canvas_only=False)
    print("wrote", OUT / f"{name}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    viewer = napari.Viewer(title="napari-unet")
    viewer.window.resize(1500, 950)
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    widget.class_names.value = "nucleus"
    widget.time_budget.value = 30
    viewer.layers.selection.active = viewer.layers["nuclei annotations"]
    viewer.layers["nuclei annotations"].mode = "paint"
    widget.show_section("Annotate")
    shot(viewer, "1_start")

    widget.show_section("Train")
    widget.train()
    for _ in range(3):  # a few previews in: the model is visibly improving
        wait_for(widget.signals.preview_updated)
    viewer.layers.selection.active = viewer.layers["nuclei prediction"]
    shot(viewer, "2_training")
    wait_for(widget.signals.training_finished)
    shot(viewer, "3_trained")

    widget.show_section("Review")
    widget.show_uncertainty.value = True  # where to look next: the map, the ranked boxes, Next region
    widget.predict()
    wait_for(widget.signals.prediction_finished)
    viewer.layers.selection.active = viewer.layers["nuclei annotations"]
    widget.next_region()
    settle(500)
    shot(viewer, "6_regions")
    viewer.layers.remove("nuclei uncertainty")
    viewer.reset_view()

    pred = viewer.layers["nuclei prediction"]
    pred.mode = "paint"
    edited = np.array(pred.data, copy=True)
    ids, counts = np.unique(edited[edited > 0], return_counts=True)
    edited[edited == ids[np.argmax(counts)]] = 0  # erase an object, as a user removing a mistake would
    pred.data = edited
    widget.use_corrections()
    viewer.layers.selection.active = viewer.layers["nuclei annotations"]
    shot(viewer, "4_corrections")
    widget.close_trainer()
    viewer.close()
    volume_shot()


def volume_shot() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from volumes import make_volume, scribble_planes

    volume, mask = make_volume(shape=(32, 160, 160), n=25, seed=2)
    viewer = napari.Viewer(show=True)
    viewer.add_image(volume, name="volume", scale=(2, 1, 1))  # z step twice the pixel size
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    widget.use_3d.value = True
    widget.show_section("Train")
    widget.new_annotations().data = scribble_planes(mask, (8, 16, 24), seed=2)
    viewer.dims.set_point(0, 24.0)  # plane 12: never painted
    widget.time_budget.value = 15
    widget.train()
    wait_for(widget.signals.training_finished)
    shot(viewer, "5_volume")
    widget.close_trainer()
    viewer.close()


if __name__ == "__main__":
    main()
