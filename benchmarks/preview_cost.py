"""What a live preview of a large image costs the viewer's GUI thread, against a plain redraw.

A 2048^2 image and an annotation layer in a real viewer; then, each followed by one
forced redraw: creating the 2048^2 "prediction" Labels layer, replacing its data with a
768^2 window of instance ids (1..400) pasted in (what the widget does per preview) as uint16
(what the widget shows) and as uint32 (what instance_labels returns, and what the widget
showed before), writing the window in place and refreshing, and a redraw with nothing
changed (the baseline). Run under a display:

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/preview_cost.py [--side 2048]
"""

from __future__ import annotations

import argparse
import time

import napari
import numpy as np
from qtpy.QtWidgets import QApplication


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    side = ap.parse_args().side
    repeats = ap.parse_args().repeats
    viewer = napari.Viewer()
    rng = np.random.default_rng(0)
    viewer.add_image((rng.random((side, side)) * 4000).astype(np.uint16), name="image")
    viewer.add_labels(np.zeros((side, side), np.uint8), name="annotations")
    app, canvas = QApplication.instance(), viewer.window._qt_viewer.canvas.native

    def redraw() -> float:
        t = time.perf_counter()
        app.processEvents()
        canvas.update()
        app.processEvents()
        return time.perf_counter() - t

    for _ in range(5):
        redraw()
    y0, x0, n = side // 2 - 384, side // 2 - 384, 768
    window = (np.arange(n)[:, None] // 40 * 20 + np.arange(n)[None, :] // 40) % 400 + 1  # 400 "objects"
    rows = []
    t = time.perf_counter()
    layer = viewer.add_labels(np.zeros((side, side), np.uint16), name="prediction")
    rows.append(("create the prediction layer", time.perf_counter() - t, redraw()))
    for dtype in (np.uint16, np.uint32):
        layer.data = np.zeros((side, side), dtype)
        redraw()
        for i in range(repeats):
            t = time.perf_counter()
            full = np.array(layer.data)
            full[y0:y0 + n, x0:x0 + n] = (window + i) % 400
            layer.data = full
            rows.append((f"paste a window, set data ({np.dtype(dtype).name})", time.perf_counter() - t, redraw()))
    layer.data = np.zeros((side, side), np.uint16)
    redraw()
    for i in range(repeats):
        t = time.perf_counter()
        layer.data[y0:y0 + n, x0:x0 + n] = (window + i) % 400
        layer.refresh()
        rows.append(("write the window in place, refresh (uint16)", time.perf_counter() - t, redraw()))
    for _ in range(repeats):
        rows.append(("nothing changed (baseline)", 0.0, redraw()))
    print(f"image {side}^2, window {n}^2")
    print("| step | GUI thread (ms) | redraw after it (ms) |")
    print("|---|---|---|")
    for name, work, draw in rows:
        print(f"| {name} | {work * 1e3:.0f} | {draw * 1e3:.0f} |")
    viewer.close()


if __name__ == "__main__":
    main()
