"""Viewer responsiveness while the widget trains: Qt event-loop lateness and training steps.

A QTimer fires every 10 ms and records how late it is, while the user is simulated on a
``--side`` square image (real nuclei: the sample field mirrored and tiled) every 20 ms:
``--interaction all`` pans, zooms and paints a brush dab; ``paint`` only paints (a user
correcting the prediction while training runs). Run under a display (Linux: it uses SIGSTOP):

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/latency.py --side 2048 --prediction-layer

Why blocks, interleaved: the viewer's lateness drifts within a session (the painted layer
fills up; a control run with no training at all went from p95 45 to 54 ms between its first
and second 8-s window), so conditions measured one after the other compare drift, not
training. Here every block starts from an empty painted layer, and while Train runs, blocks
with the trainer running alternate with blocks with the trainer process frozen (SIGSTOP):
same layers, same widget, same moment of the session; the only difference is training's CPU
use. Four training conditions: as shipped (the widget freezes a CPU trainer while the view
moves, so under ``--interaction all`` it hardly runs), paused by holding still after the
step in progress (how it pauses on macOS and Windows, where it cannot be frozen), never
paused (the widget before it did that), and frozen throughout. Blocks with no training at all come before Train is pressed and after it has stopped.
Also counts training steps and live previews that reached the screen in each block.
"""

from __future__ import annotations

import argparse
import os
import signal
import time

import napari
import numpy as np
from qtpy.QtCore import QEventLoop, QTimer

from napari_unet._qt.layers import camera


def measure(viewer, labels, seconds: float, interaction: str | None = "all", side: int = 1024) -> list[float]:
    """Lateness (ms) of a 10 ms timer while simulating the user every 20 ms for ``seconds``.

    interaction: "all" (pan, zoom and paint), "paint" (paint only) or None (viewer untouched).
    """
    lateness, t = [], {"last": time.perf_counter(), "i": 0}
    rng = np.random.default_rng(0)

    def tick():
        now = time.perf_counter()
        lateness.append(max(0.0, (now - t["last"]) * 1000 - 10))
        t["last"] = now

    def interact():
        t["i"] += 1
        if interaction == "all":
            cam = camera(viewer)
            cam.center = (side / 2 + 100 * np.sin(t["i"] / 10), side / 2 + 100 * np.cos(t["i"] / 10))
            cam.zoom = (0.6 + 0.2 * np.sin(t["i"] / 15)) * 1024 / side
        y, x = rng.integers(20, side - 24, size=2)
        labels.paint((y, x), 1, refresh=True)

    timer, actor = QTimer(), QTimer()
    timer.timeout.connect(tick)
    actor.timeout.connect(interact)
    timer.start(10)
    if interaction:
        actor.start(20)
    _run_event_loop(seconds)
    timer.stop()
    actor.stop()
    return lateness


def _run_event_loop(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec_()


def _fresh(paint, side: int) -> None:
    """Empty the painted layer (and its undo history): every block starts from the same state."""
    paint.data = np.zeros((side, side), np.uint8)
    paint._reset_history()
    _run_event_loop(0.5)  # its redraw (a whole new texture) must not land in the block


def _summary(name, blocks):
    lat = np.concatenate([b[0] for b in blocks])
    steps, previews = sum(b[1] for b in blocks), sum(b[2] for b in blocks)
    p95s = " / ".join(f"{np.percentile(b[0], 95):.0f}" for b in blocks)
    return (f"| {name} | {len(lat)} | {np.percentile(lat, 50):.1f} | {np.percentile(lat, 95):.1f} | {p95s} | "
            f"{max(lat):.0f} | {steps} | {previews} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds per block")
    ap.add_argument("--rounds", type=int, default=3, help="blocks per condition")
    ap.add_argument("--side", type=int, default=1024, help="image side in pixels")
    ap.add_argument("--interaction", choices=["all", "paint"], default="all")
    ap.add_argument("--prediction-layer", action="store_true",
                    help="add the (empty) prediction layer before the baseline, as after an earlier Train, so "
                         "that every condition draws the same layers (the widget makes it at Train otherwise)")
    args = ap.parse_args()
    side, how = args.side, args.interaction
    viewer = napari.Viewer()
    from napari_unet.engine.disk.io import read_image
    from napari_unet.sample_data import sample_paths

    field = read_image(sample_paths()["image"])[:512, :512]
    block = np.block([[field, field[:, ::-1]], [field[::-1], field[::-1, ::-1]]])  # 1024^2 of real nuclei
    image = np.tile(block, (-(-side // 1024), -(-side // 1024)))[:side, :side]
    viewer.add_image(image, name="img")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    ann = widget.new_annotations()
    ann.data[100:110, 100:300] = 1
    ann.data[500:510, 500:520] = 2
    ann.refresh()
    if args.prediction_layer:
        viewer.add_labels(np.zeros((side, side), np.uint16), name="img prediction", opacity=0.5)
    paint = viewer.add_labels(np.zeros((side, side), np.uint8), name="painting")
    previews = []
    widget.signals.preview_updated.connect(lambda: previews.append(time.perf_counter()))
    paint.brush_size = 10
    _run_event_loop(10)  # let the trainer process start and finish its warm-up
    measure(viewer, paint, 2, how, side)  # warm-up of the viewer itself (first frames are faster)

    def block(interaction=how):
        _fresh(paint, side)
        steps, shown = len(widget.losses), len(previews)
        lat = measure(viewer, paint, args.seconds, interaction, side)
        return lat, len(widget.losses) - steps, len(previews) - shown

    rows = {"no training (before Train)": [block() for _ in range(args.rounds)]}
    widget.time_budget.value = int(4 * args.rounds * args.seconds) + 60
    widget.train()
    pid = widget._trainer.process.pid
    shipped, held, never_paused, frozen = [], [], [], []
    try:
        for _ in range(args.rounds):
            widget.pause_while_view_moves = True
            shipped.append(block())
            widget._trainer.can_freeze = False  # pause as on macOS / Windows: hold after the step
            held.append(block())
            widget._trainer.can_freeze = True
            widget.pause_while_view_moves = False
            never_paused.append(block())
            os.kill(pid, signal.SIGSTOP)
            try:
                frozen.append(block())
            finally:
                os.kill(pid, signal.SIGCONT)
        widget.pause_while_view_moves = True
        untouched = [block(interaction=None)]
    finally:
        os.kill(pid, signal.SIGCONT)
    rows["training (as shipped: paused while the view moves)"] = shipped
    rows["training, paused by holding still between steps (macOS, Windows)"] = held
    rows["training, never paused"] = never_paused
    rows["training, trainer frozen throughout (SIGSTOP)"] = frozen
    rows["viewer untouched, training"] = untouched
    print("status after the training blocks:", widget.status.value, flush=True)
    if widget.is_training:
        loop = QEventLoop()
        widget.signals.training_finished.connect(loop.quit)
        widget.stop()
        loop.exec_()
    rows["no training (after Train)"] = [block() for _ in range(args.rounds)]
    widget.close_trainer()
    print(f"image {side}^2, interaction: {how}, {args.rounds} blocks of {args.seconds:g} s per condition, "
          f"prediction layer from the start: {args.prediction_layer}")
    print("| condition | timer ticks | p50 lateness (ms) | p95 lateness (ms) | p95 per block | max (ms) | "
          "training steps | previews shown |")
    print("|---|---|---|---|---|---|---|---|")
    for name, blocks in rows.items():
        print(_summary(name, blocks))
    viewer.close()


if __name__ == "__main__":
    main()
