"""Runs training in a separate process and streams its events back.

Why a process and not a thread: training saturates the CPU and holds the GIL
between torch calls, so in a thread it makes the viewer stutter; it also means a
crash or out-of-memory in training cannot take the viewer and the user's layers
down. The child is started (spawn) when the widget opens, so torch is already
imported when the user presses Train.

Protocol (plain tuples of numpy arrays / numbers / dicts, so they pickle):
  parent -> child jobs:   ("train", images, annotations, train_config_dict, init_model_dict | None,
                           unet_config_dict | None, preview_image | None, preview_window | None,
                           instances: bool, preview_tag)
                          ("quit",)
  child -> parent events: ("ready", None)
                          ("started", device_name, annotated_pixels)
                          ("step", step, loss, elapsed, learning_rate, pixels_per_second)
                          ("preview", step, elapsed, labels (H, W), probabilities (K, H, W) float16
                           | None (only for a whole 2D image), classes (N,) of instance ids | None,
                           window (y0, y1, x0, x1) | None, tag)
  parent -> child, while training: (preview_image, window, tag) on ``previews``: predict
                          this instead from the next preview on (the user moved to another
                          plane or panned); ``tag`` comes back with those previews.
  Tags are (plane, k): for 3D models the preview image is a slab of planes and only
  its plane k is sent back (k is None for 2D models).
                          ("notice", message)        # e.g. a smaller batch after out-of-memory
                          ("finished", model_dict)   # also after Stop
                          ("error", one-line message, model_dict | None)
No Qt or napari here: a thread reads the events as they come and the GUI polls them
(``poll``) with a QTimer.

The GUI may freeze the child (``pause``, SIGSTOP, Linux) while the user pans or zooms, and
thaw it (``resume``) when the view rests. The frozen time is left out of the child's
training clock, so the time budget is spent training. Every call that touches something
shared with the child (its stop Event, a join) resumes it first, and events are read in a
thread: a child frozen in the middle of a message blocks that thread, never the GUI.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
import weakref

CAN_PAUSE = sys.platform.startswith("linux")  # and a parent death kills a frozen child (PR_SET_PDEATHSIG)


class TrainerProcess:
    """A long-lived child process that trains on request."""

    def __init__(self):
        ctx = mp.get_context("spawn")
        self.jobs = ctx.Queue()
        self.previews = ctx.Queue()
        self.events, events_out = ctx.Pipe(duplex=False)
        self.stop_flag = ctx.Event()
        # seconds the child was frozen, for its training clock; no lock: the child reads it
        # and could be frozen while holding one
        self.paused_seconds = ctx.RawValue("d", 0.0)
        self._paused_since = None
        # the child's parent-death signal fires when the thread that started it ends: only the
        # main thread lives as long as the process
        self.can_pause = CAN_PAUSE and threading.current_thread() is threading.main_thread()
        self.process = ctx.Process(target=serve, args=(self.jobs, events_out, self.stop_flag, self.previews,
                                                       self.paused_seconds, self.can_pause),
                                   daemon=True, name="napari-unet-trainer")
        with _main_module_hidden():
            self.process.start()
        # Only the child may hold the sending end: if it dies, even in the middle of a
        # message, reading ends with EOFError instead of waiting forever.
        events_out.close()
        self._reader = EventReader(self.events)
        _LIVE.add(self)

    def is_alive(self) -> bool:
        """True while the child process runs (a dead one is replaced, not sent jobs)."""
        return self.process.is_alive()

    def ended(self) -> bool:
        """True once the child is gone and every event it sent has been polled."""
        return not self.process.is_alive() and self._reader.done()

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    def pause(self) -> bool:
        """Freeze the child until ``resume`` (Linux; elsewhere nothing happens). True if frozen now.

        For a few seconds at most, e.g. while the user moves the view: the child's events stop
        coming, and a job's time budget does not count the frozen time.
        """
        if not self.can_pause or self._paused_since is not None or not self.process.is_alive():
            return self._paused_since is not None
        _thaw_all_at_exit()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGSTOP)
            self._paused_since = time.perf_counter()
            _FROZEN[self.process.pid] = self.process
        return self._paused_since is not None

    def resume(self) -> None:
        """Thaw the child frozen by ``pause`` (nothing if it is not)."""
        if self._paused_since is None:
            return
        # before it runs again: its clock must never see the frozen time
        self.paused_seconds.value += time.perf_counter() - self._paused_since
        self._paused_since = None
        _thaw(self.process)

    def train(self, images, annotations, train_config: dict, init_model: dict | None,
              unet_config: dict | None, preview_image, instances: bool,
              preview_window: tuple | None = None, preview_tag=None) -> None:
        """Queue a training job; preview_image: an image (model layout) to preview, or None."""
        self.resume()
        self.stop_flag.clear()
        self.jobs.put(("train", images, annotations, train_config, init_model, unet_config,
                       preview_image, preview_window, instances, preview_tag))

    def set_preview(self, image, window, tag) -> None:
        """Preview another image or window (e.g. the plane now on screen) during the current job."""
        self.previews.put((image, window, tag))

    def stop(self) -> None:
        """Ask the running job to stop at its next step; it still sends the model."""
        self.resume()
        self.stop_flag.set()

    def poll(self, max_events: int = 100) -> list[tuple]:
        """Events that arrived so far (non-blocking)."""
        return self._reader.poll(max_events)

    def close(self, timeout: float = 3.0) -> None:
        """Stop any job and end the child; never leaves a process or thread behind."""
        self.resume()
        if self.process.is_alive():
            self.stop_flag.set()
            try:
                self.jobs.put(("quit",))
            except (OSError, ValueError):
                pass
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout)
        self._reader.join(timeout)  # it ends at the end of the pipe, which the child held
        self.events.close()
        for q in (self.jobs, self.previews):
            # The child is gone, so what is still in a pipe would never be read, and the queue's
            # feeder thread would wait forever to finish writing it (a preview image sent as
            # training ended fills the pipe's buffer), and with it close() and the interpreter
            # at exit. Read it here instead; never wait for the feeder thread.
            _discard_unread(q)
            q.cancel_join_thread()
            q.close()


class EventReader:
    """Reads a connection in a daemon thread as messages arrive; ``poll`` hands them over.

    The GUI thread never reads the pipe itself: a sender frozen (or slow) in the middle of a
    large message would block it until the rest came.
    """

    def __init__(self, connection):
        self._inbox = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._read, args=(connection,), daemon=True,
                                        name="napari-unet-trainer-events")
        self._thread.start()

    def _read(self, connection) -> None:
        with contextlib.suppress(EOFError, OSError):  # the sender is gone (or we closed the pipe)
            while True:
                self._inbox.put(connection.recv())

    def poll(self, max_events: int = 100) -> list:
        """Messages read so far, oldest first (non-blocking)."""
        out = []
        with contextlib.suppress(queue.Empty):
            while len(out) < max_events:
                out.append(self._inbox.get_nowait())
        return out

    def done(self) -> bool:
        """True once the sender is gone and every message has been polled."""
        return not self._thread.is_alive() and self._inbox.empty()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


_FROZEN = {}  # pid -> process, children frozen now


def _thaw(process) -> None:
    """SIGCONT to a child we may have frozen (no-op if it has ended)."""
    _FROZEN.pop(process.pid, None)
    if CAN_PAUSE and process.pid is not None and process.exitcode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(process.pid, signal.SIGCONT)


@functools.cache
def _thaw_all_at_exit() -> None:
    """At exit multiprocessing terminates and joins its daemon children, and a frozen child
    would never end: thaw them first. Registered on the first pause, after multiprocessing's
    own exit function, so it runs before it (atexit runs last-registered first)."""
    atexit.register(lambda: [_thaw(p) for p in list(_FROZEN.values())])


_LIVE = weakref.WeakSet()  # every TrainerProcess of this process
_PRESTARTED: list = []  # at most one, started before any widget asked for it


def prestart() -> None:
    """Start a trainer now, for the widget that will open next (``take_prestarted``).

    Called where a user is about to train: ``napari-unet demo`` before it builds the viewer,
    and the sample with scribbles when it opens. The child's Python and torch import (1.5 s
    here) then overlap napari's start or the user's way to the widget, instead of the wait
    for the first preview. Nothing happens if a trainer of this process is alive already.
    """
    if not any(t.process.is_alive() for t in list(_LIVE)):
        _PRESTARTED[:] = [TrainerProcess()]


def take_prestarted() -> "TrainerProcess | None":
    """The trainer ``prestart`` started, if it is still alive (once)."""
    trainer = _PRESTARTED.pop() if _PRESTARTED else None
    return trainer if trainer is not None and trainer.process.is_alive() else None


def _discard_unread(q, timeout: float = 0.2) -> None:
    """Read and drop what is left in queue ``q`` (waiting up to ``timeout`` s for each item)."""
    import queue

    with contextlib.suppress(queue.Empty, OSError, ValueError, EOFError):
        while True:
            q.get(timeout=timeout)


@contextlib.contextmanager
def _main_module_hidden():
    """Start the child without re-running the user's ``__main__``.

    A spawned child normally imports the parent's main script first. napari scripts
    rarely guard their top level with ``if __name__ == "__main__"``, so the child
    would open a second viewer and die; the trainer needs nothing from ``__main__``.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


class _Sender:
    """The child's end of the event pipe, with a queue-like ``put``."""

    def __init__(self, connection):
        self.connection = connection

    def put(self, event) -> None:
        self.connection.send(event)


def serve(jobs, events_out, stop_flag, previews=None, paused_seconds=None, pausable=False) -> None:
    """Child main loop: run jobs until "quit"."""
    events = _Sender(events_out)
    if pausable:
        _die_with_parent()
    _yield_cpu_to_viewer()
    import torch  # noqa: F401  (import now, so the first Train starts at once)

    from napari_unet import train  # noqa: F401

    events.put(("ready", None))
    _warm_up(interrupted=lambda: not jobs.empty())
    while True:
        job = jobs.get()
        if job[0] == "quit":
            return
        if job[0] == "train":
            _run_training(job[1:], events, stop_flag, previews, _clock(paused_seconds))
            _latest(previews, {})()  # preview changes that came too late for this job must not leak into the next


def _clock(paused_seconds):
    """Seconds that leave out the time the parent kept this process frozen (``pause``)."""
    if paused_seconds is None:
        return time.perf_counter
    return lambda: time.perf_counter() - paused_seconds.value


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
    import os

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


def _run_training(job, events, stop_flag, previews=None, clock=time.perf_counter) -> None:
    from napari_unet import io, train
    from napari_unet.predict import predict_probabilities
    from napari_unet.errors import UserInputError
    from napari_unet.model import UNetConfig

    images, annotations, cfg, init, unet_cfg, preview, preview_window, want_instances, preview_tag = job
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
