"""The trainer's child process: its main loop, warm-up, training jobs and previews.

Runs in the process that ``_trainer_process.TrainerProcess`` spawns; the protocol is
described there. No Qt or napari here either.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback


class _Sender:
    """The child's end of the event pipe, with a queue-like ``put``."""

    def __init__(self, connection):
        self.connection = connection

    def put(self, event) -> None:
        self.connection.send(event)


def serve(jobs, events_out, stop_flag, previews=None, paused_seconds=None, freezable=False, hold=None) -> None:
    """Child main loop: run jobs until "quit".

    paused_seconds: shared double, the seconds the parent kept this process frozen (SIGSTOP).
    freezable: the parent may freeze this process (then it must die with the parent, frozen or not).
    hold: shared byte the parent sets to ask for a pause where it cannot freeze (checked between steps).
    """
    events = _Sender(events_out)
    if freezable:
        _die_with_parent()
    _yield_cpu_to_viewer()  # first: threads started later inherit it
    _exit_when_parent_exits()
    import torch  # noqa: F401  (import now, so the first Train starts at once)

    from napari_unet import train  # noqa: F401

    events.put(("ready", None))
    _warm_up(interrupted=lambda: not jobs.empty())
    while True:
        job = jobs.get()
        if job[0] == "quit":
            return
        if job[0] == "train":
            _run_training(job[1:], events, stop_flag, previews, _Clock(paused_seconds), hold)
            _latest(previews, {})()  # preview changes that came too late for this job must not leak into the next


class _Clock:
    """Seconds of training time: perf_counter less the time this process was paused, frozen by
    the parent (``paused_seconds``, counted there) or holding still on request (``held``)."""

    def __init__(self, paused_seconds=None):
        self.frozen = paused_seconds
        self.held = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self.held - (self.frozen.value if self.frozen is not None else 0.0)


MAX_HOLD_S = 10.0  # a hold the parent forgot to lift (it never should) costs at most this per step


def _hold_while_asked(hold, stop_flag, clock: _Clock) -> None:
    """Between two training steps: wait while the parent asks for a pause (``hold``), not
    counting the wait as training time; Stop, a dead parent or MAX_HOLD_S end the wait."""
    if hold is None or not hold.value:
        return
    import multiprocessing as mp

    parent = mp.parent_process()
    start = time.perf_counter()
    while hold.value and not stop_flag.is_set() and time.perf_counter() - start < MAX_HOLD_S:
        if parent is not None and not parent.is_alive():
            break
        time.sleep(0.02)  # 50 checks a second: the view rests 0.2 s before the hold is lifted
    clock.held += time.perf_counter() - start


def _exit_when_parent_exits() -> None:
    """End this process when the parent's does, however it ends (killed, crashed).

    An idle child waits on its job queue, whose pipe this process holds both ends of, so
    it would never see the parent go and stay forever, with torch's memory. A thread waits
    on the parent's sentinel instead (any platform; a frozen child is the parent-death
    signal's job, see _die_with_parent)."""
    import multiprocessing as mp
    import threading

    parent = mp.parent_process()
    if parent is None:
        return

    def watch():
        parent.join()
        os._exit(0)
    threading.Thread(target=watch, daemon=True, name="napari-unet-parent-watch").start()


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the parent dies, even while frozen (a SIGSTOPped
    process would otherwise never see that its pipes closed, and stay forever)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before prctl
        os._exit(1)


def _yield_cpu_to_viewer() -> None:
    """The viewer gets the CPU whenever it needs it; training takes everything left over.

    On Linux the trainer (and every thread torch starts later, which inherit it) runs under
    SCHED_IDLE: it runs only on cores nothing else wants, and a waking viewer thread preempts
    it at once. nice 10 alone still let a training step hold both cores of a 2-core laptop
    for tens of ms while napari redrew. Elsewhere, nice 10 (macOS) or nothing (Windows).
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        return
    except (AttributeError, OSError):
        pass
    if hasattr(os, "nice"):
        os.nice(10)


def _warm_up(interrupted=lambda: False) -> None:
    """Train a tiny model for two steps and preview it, while the user is still painting.

    interrupted: asked between steps; True (the user pressed Train already) ends the warm-up,
    since the real job pays the same first-time costs and its first preview must not wait.

    The first convolutions of a process set up oneDNN kernels and the first preview imports
    scikit-image; done here, the user's first Train starts as fast as every later one.
    (torch.optim would also import torch._dynamo here, 1.5-2.5 s; our AdamW does not.)
    The imports for instances come first: every first preview needs them (0.65 s here), so
    a Train pressed during them waits for nothing it would not have paid anyway.
    Any failure is ignored: the real job reports it.
    """
    import numpy as np

    from napari_unet import train

    try:
        if interrupted():
            return
        probs = np.zeros((2, 64, 64), np.float32)
        probs[0], probs[1, 16:48, 16:48] = 0.4, 0.6
        _send_preview(_Discard(), probs, True, 0, 0.0)  # scipy, scikit-image and their first calls
        if interrupted():
            return
        # the real batch and patch shapes: oneDNN sets up kernels per shape
        image = np.random.default_rng(0).random((128, 128), dtype=np.float32)
        ann = np.zeros((128, 128), np.uint8)
        ann[:64], ann[64:] = 1, 2
        config = train.TrainConfig(steps=2, time_budget=None, first_preview=0.0, device="auto")
        for event in train.fit([image], [ann], config, preview_image=image):
            if interrupted():
                return
            if isinstance(event, train.Preview):
                _send_preview(_Discard(), event.probabilities, True, 0, 0.0)
    except Exception:  # noqa: BLE001 - warm-up only
        pass


class _Discard:
    def put(self, event) -> None:
        pass


def _latest(previews, current: dict):
    """A preview_source for fit: the newest (image, window, tag) sent by the GUI, if any."""
    import queue

    def source():
        newest = None
        while previews is not None:
            try:
                newest = previews.get_nowait()
            except queue.Empty:
                break
        if newest is not None:
            current["image"], current["window"], current["tag"] = newest
        return newest
    return source


def _run_training(job, events, stop_flag, previews=None, clock=None, hold=None) -> None:
    from napari_unet import io, train
    from napari_unet.predict import predict_probabilities
    from napari_unet.errors import UserInputError
    from napari_unet.model import UNetConfig

    images, annotations, cfg, init, unet_cfg, preview, preview_window, want_instances, preview_tag = job
    clock = clock or _Clock()
    model = None
    try:
        init_model = io.model_from_dict(init) if init else None
        current = {"image": preview, "window": preview_window, "tag": preview_tag}
        gen = train.fit(images, annotations, train.TrainConfig(**cfg), model=init_model,
                        unet_config=UNetConfig(**unet_cfg) if unet_cfg else None, preview_image=preview,
                        preview_window=preview_window, preview_source=_latest(previews, current),
                        preview_tag=preview_tag, clock=clock)
        for event in gen:
            if isinstance(event, train.Started):
                model = event.model
                events.put(("started", event.device, event.annotated_pixels))
            elif isinstance(event, train.Step):
                events.put(("step", event.step, event.loss, event.elapsed, event.learning_rate,
                            event.pixels_per_second))
            elif isinstance(event, train.Notice):
                events.put(("notice", event.message))
            elif isinstance(event, train.Preview):
                _send_preview(events, event.probabilities, want_instances, event.step, event.elapsed,
                              event.window, event.tag)
            _hold_while_asked(hold, stop_flag, clock)
            if stop_flag.is_set():
                gen.close()  # leaves the model usable (eval mode, summary updated)
                break
        _latest(previews, current)()  # the plane on screen now
        if current["image"] is not None and model is not None:  # the prediction of the final model
            rounds = model.summary.get("rounds", [{}])
            part = train.crop_window(current["image"], current["window"], model.config.channel_axis)
            _send_preview(events, predict_probabilities(model, part), want_instances,
                          rounds[-1].get("steps", 0), rounds[-1].get("seconds", 0.0), current["window"],
                          current["tag"])
        events.put(("finished", io.model_to_dict(model)))
    except UserInputError as exc:
        events.put(("error", str(exc), io.model_to_dict(model) if model else None))
    except Exception as exc:  # noqa: BLE001 - report anything, keep the process alive
        last = traceback.format_exc().strip().splitlines()[-1]
        saved = None
        try:
            saved = io.model_to_dict(model) if model else None
        except Exception:  # noqa: BLE001
            pass
        events.put(("error", f"training failed: {type(exc).__name__}: {exc} ({last})"[:400], saved))


def _send_preview(events, probs, want_instances: bool, step: int, elapsed: float, window=None,
                  tag=None) -> None:
    """Labels are made here, in the child, so the GUI only has to show them."""
    from napari_unet import instances

    if probs.ndim == 4:  # a 3D model's slab: send the plane on screen
        probs = probs[:, tag[1] if tag and tag[1] is not None else probs.shape[1] // 2]
    classes = None
    if want_instances:
        result = instances.instance_labels(probs)
        labels, classes = result.labels, result.classes
    else:
        labels = instances.semantic_labels(probs)
    # the GUI shows probabilities only with a whole 2D image; a window or a plane of a stack is
    # pasted as labels alone, so its probabilities would only cost pickling and the pipe (2.4 MB
    # for a 768^2 window)
    whole_image = window is None and not (tag and tag[0])
    events.put(("preview", step, elapsed, labels, probs.astype("float16") if whole_image else None, classes,
                window, tag))
