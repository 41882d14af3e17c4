"""A real viewer session with the U-Net widget: time to the first preview, and memory over many rounds.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/session.py first-preview
    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/session.py long --rounds 20

first-preview: opens napari with the nuclei sample (520 x 696) and its scribbles (which
  starts the trainer process), adds the widget (--menu-delay s later) and presses Train
  (a) at once, while the trainer process may still be starting (cold; --as-demo starts
  it before napari is imported, as ``napari-unet demo`` does), and (b) four more times
  with the trainer ready (warm); prints the seconds from Train to the first preview on
  screen (the ``preview_updated`` signal);
  then (c) with a new trainer started --delays seconds before Train (the user painting
  for that long after opening the widget) and, as in a new session, no prediction layer yet.
long: --rounds rounds of Train (--budget s) + Predict in one viewer; after each
  round the resident memory (RSS) of the viewer process and of the trainer process.
  Baseline: the same numbers after round 1, so growth over the session is visible.
"""

from __future__ import annotations

import argparse
import time


def _wait(signal, timeout_s: float = 300.0) -> float:
    """Run the Qt event loop until ``signal`` fires; returns the seconds waited."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    signal.connect(loop.quit)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    start = time.perf_counter()
    loop.exec_() if hasattr(loop, "exec_") else loop.exec()
    signal.disconnect(loop.quit)
    return time.perf_counter() - start


def _open(as_demo: bool = False, menu_delay: float = 0.0):
    """Viewer, sample with scribbles (which starts the trainer) and widget.

    as_demo: open them as ``napari-unet demo`` does (the trainer starts before napari is imported).
    menu_delay: seconds between opening the sample and opening the widget (the user's way
    through the Plugins menu)."""
    if as_demo:
        from napari_unet._qt import demo

        return demo.open_viewer()
    import napari

    viewer = napari.Viewer(show=True)
    viewer.open_sample("napari-unet", "nuclei_scribbles")
    if menu_delay:
        _idle(menu_delay)
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    return viewer, widget


def _idle(seconds: float) -> None:
    """Keep the Qt event loop running for ``seconds`` (the user painting)."""
    from qtpy.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec_() if hasattr(loop, "exec_") else loop.exec()


def first_preview(args):
    viewer, w = _open(args.as_demo, args.menu_delay)
    w.time_budget.value = 5
    rows = []
    for i in range(1 + args.warm):
        w.new_model()  # each run starts afresh (Start from: auto), as the first Train of a session does
        start = time.perf_counter()
        w.train()
        _wait(w.signals.preview_updated)
        how = "demo" if args.as_demo else f"{args.menu_delay:g} s after the sample"
        cold = f"cold: Train the instant the widget opens ({how})"
        rows.append((cold if i == 0 else "warm", time.perf_counter() - start))
        _wait(w.signals.training_finished)
    for delay in args.delays:  # a new trainer, as when the widget opens, then Train after `delay` s
        w.close_trainer()
        w._trainer = None
        viewer.layers.remove("nuclei prediction")  # as in a new session: no prediction layer yet
        w._ensure_trainer()
        _idle(delay)
        w.new_model()
        start = time.perf_counter()
        w.train()
        _wait(w.signals.preview_updated)
        rows.append((f"Train {delay:g} s after the trainer starts", time.perf_counter() - start))
        _wait(w.signals.training_finished)
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} |")
    w.close_trainer()
    viewer.close()


def long_session(args):
    import psutil

    viewer, w = _open()
    w.time_budget.value = args.budget
    me = psutil.Process()
    print("| round | viewer RSS MiB | trainer RSS MiB | steps so far |")
    print("|---|---|---|---|")
    for r in range(1, args.rounds + 1):
        w.train()
        _wait(w.signals.training_finished)
        w.predict()
        _wait(w.signals.prediction_finished)
        trainer = psutil.Process(w._trainer.process.pid)
        print(f"| {r} | {me.memory_info().rss / 2**20:.0f} | {trainer.memory_info().rss / 2**20:.0f} | "
              f"{w.model.summary['total_steps']} |", flush=True)
    w.close_trainer()
    viewer.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", choices=["first-preview", "long"])
    ap.add_argument("--warm", type=int, default=4, help="first-preview: warm repeats")
    ap.add_argument("--delays", type=float, nargs="*", default=[2, 4, 6],
                    help="first-preview: seconds between starting a new trainer and Train")
    ap.add_argument("--as-demo", action="store_true",
                    help="first-preview: start the trainer before importing napari, as `napari-unet demo` does")
    ap.add_argument("--menu-delay", type=float, default=0.0,
                    help="first-preview: seconds between opening the sample (which starts the trainer) and the widget")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=5, help="long: training seconds per round (the widget allows >= 5)")
    args = ap.parse_args(argv)
    {"first-preview": first_preview, "long": long_session}[args.part](args)


if __name__ == "__main__":
    main()
