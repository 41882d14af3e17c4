"""The trainer's child process: its main loop, warm-up, training jobs and previews.

Runs in the process that ``process.TrainerProcess`` spawns; the messages are those of
``protocol``. No Qt or napari here either.
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


def serve(jobs, events_out, stop_flag, previews=None, paused_seconds=None, freezable=False, hold=None,
          quit_flag=None) -> None:
    """Child main loop: run jobs until "quit".

    paused_seconds: shared double, the seconds the parent kept this process frozen (SIGSTOP).
    freezable: the parent may freeze this process (then it must die with the parent, frozen or not).
    hold: shared byte the parent sets to ask for a pause where it cannot freeze (checked between steps).
    quit_flag: set with stop_flag when the round must end at once, unscored (the viewer closes).
    """
    events = _Sender(events_out)
    if freezable:
        _die_with_parent()
    _yield_cpu_to_viewer()  # first: threads started later inherit it
    _exit_when_parent_exits()
    import torch  # noqa: F401  (import now, so the first Train starts at once)

    from ..engine.training import train  # noqa: F401
    from . import protocol  # (after the scheduling above: numpy starts its threads when imported)

    events.put(protocol.TrainerReady())
    _warm_up(interrupted=lambda: not jobs.empty())
    while True:
        job = jobs.get()
        if isinstance(job, protocol.Quit):
            _exit_at_once()
        if isinstance(job, protocol.TrainJob):
            _run_training(job, events, stop_flag, previews, _Clock(paused_seconds), hold, quit_flag)
            _latest(previews, None)()  # preview changes that came too late for this job must not leak into the next


def _exit_at_once() -> None:
    """End the process now, skipping the interpreter's teardown: with torch loaded it took 1 s,
    which every close of the viewer waited for. Nothing is lost: every event went out synchronously
    on the pipe, and this process writes no file and no queue."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


class _Clock:
    """Seconds of training time: perf_counter less the time this process was paused, frozen by
    the parent (``paused_seconds``, counted there) or holding still on request (``held``)."""

    def __init__(self, paused_seconds=None):
        self.frozen = paused_seconds
        self.held = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self.held - (self.frozen.value if self.frozen is not None else 0.0)


MAX_HOLD_S = 10.0  # a hold the parent forgot to lift (it never should) costs at most this per step


def hold_while_asked(hold, stop_flag, clock: _Clock) -> None:
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
    """The viewer gets the CPU first; training gets a fair share of the rest, also beside other programs.

    nice 10 (every thread torch starts later inherits it): against a busy viewer thread the trainer
    gets about a tenth of a core, against idle cores all of them. The widget pauses the trainer
    while the user pans, zooms or paints, which is when the viewer needs the CPU at once.
    (SCHED_IDLE, used before, starved training completely beside any busy program: 1-3 steps in a
    15-s round.) On Windows, where there is no nice, the normal priority.
    """
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
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

    from ..engine.training import train
    from . import protocol

    try:
        if interrupted():
            return
        probs = np.zeros((2, 64, 64), np.float32)
        probs[0], probs[1, 16:48, 16:48] = 0.4, 0.6
        _send_preview(_Discard(), probs, True, 0, 0.0, protocol.PreviewRequest(probs))  # scikit-image's first calls
        if interrupted():
            return
        # the real batch and patch shapes: oneDNN sets up kernels per shape
        image = np.random.default_rng(0).random((128, 128), dtype=np.float32)
        ann = np.zeros((128, 128), np.uint8)
        ann[:64], ann[64:] = 1, 2
        config = train.TrainConfig(steps=2, time_budget=None, first_preview=0.0, device="auto")
        for event in train.fit([image], [ann], config, preview_image=image[None]):
            if interrupted():
                return
            if isinstance(event, train.Preview):
                _send_preview(_Discard(), event.probabilities, True, 0, 0.0, protocol.PreviewRequest(image))
    except Exception:  # noqa: BLE001 - warm-up only
        pass


class _Discard:
    def put(self, event) -> None:
        pass


def _latest(previews, current):
    """A preview_source for fit: the newest ``protocol.PreviewRequest`` sent by the GUI, if any, as
    (image, window, tag); ``current`` (when given) is updated to it."""
    import queue

    def source():
        newest = None
        while previews is not None:
            try:
                newest = previews.get_nowait()
            except queue.Empty:
                break
        if newest is None:
            return None
        if current is not None:
            current.image, current.window, current.tag = newest.image, newest.window, newest.tag
        return newest.image, newest.window, newest.tag
    return source


def _run_training(job, events, stop_flag, previews=None, clock=None, hold=None, quit_flag=None) -> None:
    """Run one ``protocol.TrainJob``, sending its events; never raises. Stop (``stop_flag``) ends the round
    as its budget would, scored and guarded; ``quit_flag`` ends it at once (the viewer closes)."""
    from napari_unet.errors import UserInputError

    from ..engine.model import modelfile
    from ..engine.model.unet import learned_split
    from ..engine.prediction.pipeline import preview_maps
    from ..engine.training import train
    from . import protocol

    clock = clock or _Clock()
    model = None
    current = job.preview or protocol.PreviewRequest(None)
    try:
        init_model = modelfile.model_from_dict(job.init_model) if job.init_model else None
        diameter = job.diameter
        if init_model is None and job.start == "auto":
            init_model, measured = _chosen_start(job, events)
            if diameter == "auto" and measured is not None:
                diameter = measured  # the chosen model's own estimate, not measured a second time
        gen = train.fit(job.images, job.annotations, job.config, model=init_model, unet_config=job.unet_config,
                        objects=job.objects, checked=job.checked, preview_image=current.image, preview_window=current.window,
                        preview_source=_latest(previews, current), preview_tag=current.tag, clock=clock, axes=job.axes,
                        diameter=diameter, stop=stop_flag.is_set)  # a stopped round is still guarded
        verdict = None
        for event in gen:
            if isinstance(event, train.Started):
                model = event.model
                events.put(protocol.TrainingStarted(event.device, event.annotated_pixels))
            elif isinstance(event, train.Finished):
                verdict = event.verdict
            elif isinstance(event, (train.Step, train.Notice, train.Validation)):
                events.put(event)
            elif isinstance(event, train.Preview):
                _send_preview(events, event.probabilities, job.instances, event.step, event.elapsed,
                              protocol.PreviewRequest(None, event.window, event.tag), event.split,
                              model.config.split_head)
            hold_while_asked(hold, stop_flag, clock)
            if quit_flag is not None and quit_flag.is_set():
                gen.close()  # leaves the model usable (eval mode, summary updated), unscored
                break
        _latest(previews, current)()  # the plane on screen now
        if current.image is not None and model is not None:  # the prediction of the final model
            rounds = model.summary.get("rounds", [{}])
            maps = preview_maps(model, current.image, current.window)
            _send_preview(events, maps.probabilities, job.instances, rounds[-1].get("steps", 0),
                          rounds[-1].get("seconds", 0.0), current, maps.split if learned_split(model) else None,
                          model.config.split_head)
        events.put(protocol.TrainingFinished(modelfile.model_to_dict(model), verdict))
    except UserInputError as exc:
        events.put(protocol.TrainingFailed(str(exc), modelfile.model_to_dict(model) if model else None))
    except Exception as exc:  # noqa: BLE001 - report anything, keep the process alive
        last = traceback.format_exc().strip().splitlines()[-1]
        saved = None
        try:
            saved = modelfile.model_to_dict(model) if model else None
        except Exception:  # noqa: BLE001
            pass
        events.put(protocol.TrainingFailed(f"training failed: {type(exc).__name__}: {exc} ({last})"[:400], saved))


def _chosen_start(job, events):
    """(model, diameter): the bundled model that agrees with the job's strokes (its class names from the
    job), or None (a new network), and the first image's diameter as it estimated it (``size.Estimated``)
    or None; the choice and why go to the viewer as a Notice."""
    from ..engine.training import train
    from ..engine.training.start import choose_start

    choice = choose_start(job.images, job.annotations, job.objects)
    events.put(train.Notice(choice.reason))
    if not choice.name:
        return None, None
    model = choice.model
    model.summary.setdefault("source", f"{choice.name} (bundled)")
    names = list(job.unet_config.class_names) if job.unet_config is not None else []
    if names and names != ["object"]:
        model.config.class_names = (names + model.config.class_names[len(names):])[:model.config.n_classes]
    return model, choice.diameter


def _send_preview(events, probs, want_instances: bool, step: int, elapsed: float, request, split=None,
                  head: str = "distance") -> None:
    """Labels are made here, in the child, so the GUI only has to show them.

    request: the ``protocol.PreviewRequest`` the probabilities answer (its window and tag; its
    image is not used). split: the learned split output, once objects have taught it (else None)."""
    from ..engine.prediction.pipeline import labels_from_probabilities
    from . import protocol

    tag = request.tag
    if probs.ndim == 4:  # a 3D model's slab: send the plane on screen
        k = tag[1] if tag and tag[1] is not None else probs.shape[1] // 2
        probs, split = probs[:, k], (split[k] if split is not None else None)
    labels, classes = labels_from_probabilities(probs, want_instances, split=split, head=head)
    # the GUI shows probabilities only with a whole 2D image; a window or a plane of a stack is
    # pasted as labels alone, so its probabilities would only cost pickling and the pipe (2.4 MB
    # for a 768^2 window)
    whole_image = request.window is None and not (tag and tag[0])
    events.put(protocol.PreviewLabels(step, elapsed, labels, probs.astype("float16") if whole_image else None,
                                      classes, request.window, tag))
