"""Runs training in a separate process and streams its events back.

Why a process and not a thread: training saturates the CPU and holds the GIL
between torch calls, so in a thread it makes the viewer stutter; it also means a
crash or out-of-memory in training cannot take the viewer and the user's layers
down. The child (``child.serve``) is started (spawn) when the widget opens, or
earlier (``prestart``), so torch is already imported when the user presses Train.

Jobs and events are the typed messages of ``protocol``. No Qt or napari here: a thread reads
the events as they come and the GUI polls them (``poll``) with a QTimer.

The GUI may pause the child (``pause``) while the user pans or zooms, and resume it when
the view rests. On Linux, for a child started from the main thread, pausing freezes it
(SIGSTOP: at once, mid-step); elsewhere it asks the child to hold still, which it does
after the step in progress (``child.hold_while_asked``). Either way the paused
time is left out of the child's training clock, so the time budget is spent training.
Every call that touches something shared with the child (its stop Event, a join) resumes
it first, and events are read in a thread: a child frozen in the middle of a message
blocks that thread, never the GUI. The child ends when this process does, however it ends.
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
import weakref

from . import child as trainer_child
from .protocol import Notice, PreviewRequest, Quit, TrainJob

CAN_FREEZE = sys.platform.startswith("linux")  # and a parent death kills a frozen child (PR_SET_PDEATHSIG)


class TrainerProcess:
    """A long-lived child process that trains on request."""

    def __init__(self):
        ctx = mp.get_context("spawn")
        self.jobs = ctx.Queue()
        self.previews = ctx.Queue()
        self.events, events_out = ctx.Pipe(duplex=False)
        self.stop_flag = ctx.Event()
        self.quit_flag = ctx.Event()  # with stop_flag: end the round at once, unscored (the viewer closes)
        # seconds the child was frozen, for its training clock; no lock: the child reads it
        # and could be frozen while holding one
        self.paused_seconds = ctx.RawValue("d", 0.0)
        self.hold = ctx.RawValue("b", 0)  # 1: pause after this step (where the child is not frozen)
        self._paused_since = None
        self._frozen = False
        self._jobs_sent = 0
        self._sent_to = set()  # the queues this process put something in (their feeder threads may hold it)
        # the child's parent-death signal fires when the thread that started it ends: only the
        # main thread lives as long as the process
        self.can_freeze = CAN_FREEZE and threading.current_thread() is threading.main_thread()
        self.process = ctx.Process(target=trainer_child.serve,
                                   args=(self.jobs, events_out, self.stop_flag, self.previews, self.paused_seconds,
                                         self.can_freeze, self.hold, self.quit_flag),
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
        """Pause the child's training until ``resume``; True if paused now.

        Frozen at once where it can be (``can_freeze``), else after the step in progress. For a
        few seconds at most, e.g. while the user moves the view: the child's events stop
        coming, and a job's time budget does not count the paused time.
        """
        if self._paused_since is not None or not self.process.is_alive():
            return self._paused_since is not None
        if self.can_freeze:
            _thaw_all_at_exit()
            try:
                os.kill(self.process.pid, signal.SIGSTOP)
            except ProcessLookupError:
                return False
            self._frozen = True
            _FROZEN[self.process.pid] = self.process
        else:
            self.hold.value = 1  # the child counts its own wait
        self._paused_since = time.perf_counter()
        return True

    def resume(self) -> None:
        """Resume the child paused by ``pause`` (nothing if it is not)."""
        if self._paused_since is None:
            return
        self.hold.value = 0
        if self._frozen:
            # before it runs again: its clock must never see the frozen time
            self.paused_seconds.value += time.perf_counter() - self._paused_since
            self._frozen = False
            _thaw(self.process)
        self._paused_since = None

    def train(self, job: TrainJob) -> None:
        """Queue a training job; its events come back through ``poll``."""
        self.resume()
        self.stop_flag.clear()
        self.quit_flag.clear()
        self._jobs_sent += 1
        self._sent_to.add("jobs")
        self.jobs.put(job)

    def set_preview(self, request: PreviewRequest) -> None:
        """Preview another image or window (e.g. the plane now on screen) during the current job."""
        self._sent_to.add("previews")
        self.previews.put(request)

    def stop(self, now: bool = False) -> None:
        """Ask the running job to stop at its next step; it still sends the model, scored and guarded
        as at the end of its budget, or (``now``: the viewer closes) at once, as it is."""
        self.resume()
        if now:
            self.quit_flag.set()
        self.stop_flag.set()

    def poll(self, max_events: int = 100) -> list:
        """Events (``protocol`` dataclasses) that arrived so far, oldest first (non-blocking)."""
        return self._reader.poll(max_events)

    def close(self, timeout: float = 3.0) -> None:
        """Stop any job and end the child; never leaves a process or thread behind."""
        self.resume()
        if self.process.is_alive() and not self._jobs_sent:
            # It holds nothing of the user's, and may still be importing torch, which a Quit
            # would wait for (a viewer closed right after it opened took 3 s more to close).
            self.process.terminate()
            self.process.join(timeout)
        if self.process.is_alive():
            self.quit_flag.set()
            self.stop_flag.set()
            try:
                self._sent_to.add("jobs")
                self.jobs.put(Quit())
            except (OSError, ValueError):
                pass
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(timeout)
        self._reader.join(timeout)  # it ends at the end of the pipe, which the child held
        self.events.close()
        for name, q in (("jobs", self.jobs), ("previews", self.previews)):
            # The child is gone, so what is still in a pipe would never be read, and the queue's
            # feeder thread would wait forever to finish writing it (a preview image sent as
            # training ended fills the pipe's buffer), and with it close() and the interpreter
            # at exit. Read it here instead; never wait for the feeder thread. Only this process
            # writes these queues: one it never wrote to holds nothing (and the wait for a last
            # item, 0.2 s a queue, is spared: most viewers close without a Train).
            # A child that ended by itself (exit code 0) read the Quit, the last job sent, and with
            # it every job: the jobs pipe is empty, and its 0.2 s wait is spared.
            emptied = name == "jobs" and self.process.exitcode == 0
            if name in self._sent_to and not emptied:
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
        while True:
            try:
                self._inbox.put(connection.recv())
            except (EOFError, OSError):  # the sender is gone (or we closed the pipe)
                return
            except Exception as exc:  # noqa: BLE001 - a message that does not unpickle (it was read whole)
                self._inbox.put(Notice(f"a message from the trainer could not be read and was skipped ({exc!r})"))

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
    if CAN_FREEZE and process.pid is not None and process.exitcode is None:
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
