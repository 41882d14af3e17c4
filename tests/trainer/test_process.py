"""The trainer process without Qt: events, and scripts without a ``__main__`` guard."""

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

SCRIPT = textwrap.dedent('''
    import pathlib, sys, time
    import numpy as np
    marker = pathlib.Path(sys.argv[1])
    with marker.open("a") as f:  # top-level code, no __main__ guard, like most napari scripts
        f.write("ran ")
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.training.config import TrainConfig
    from napari_unet.trainer.process import TrainerProcess
    from napari_unet.trainer.protocol import PreviewRequest, TrainJob

    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    ann = np.zeros((40, 40), np.uint8)
    ann[5, 5], ann[30, 30] = 1, 2
    trainer = TrainerProcess()
    trainer.train(TrainJob([image], [ann], TrainConfig(steps=2, time_budget=None, batch_size=2, patch_size=32),
                           None, UNetConfig(depth=1, width=4), PreviewRequest(image[None]), instances=False))
    kinds, deadline = [], time.time() + 120
    while "TrainingFinished" not in kinds and "TrainingFailed" not in kinds and time.time() < deadline:
        kinds += [type(e).__name__ for e in trainer.poll()]
        if trainer.ended():
            break
        time.sleep(0.05)
    trainer.close()
    print(" ".join(kinds))
''')


@pytest.mark.heavy_compute
def test_script_without_main_guard_trains_once(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    marker = tmp_path / "marker"
    proc = subprocess.run([sys.executable, str(script), str(marker)], check=False, capture_output=True, text=True, timeout=180)
    kinds = proc.stdout.split()
    assert kinds[0] == "TrainerReady" and "TrainingStarted" in kinds and "PreviewLabels" in kinds, proc.stderr
    assert kinds[-1] == "TrainingFinished", proc.stderr
    assert marker.read_text() == "ran "  # the child did not run the user's script again


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads each thread's niceness from /proc (Linux)")
def test_trainer_and_all_its_threads_yield_to_the_viewer_at_nice_10():
    from napari_unet.trainer.process import TrainerProcess

    trainer = TrainerProcess()
    try:
        deadline, kinds = time.time() + 120, []
        while "TrainerReady" not in kinds and time.time() < deadline and not trainer.ended():
            kinds += [type(e).__name__ for e in trainer.poll()]
            time.sleep(0.05)
        assert "TrainerReady" in kinds
        threads = []
        while len(threads) < 2 and time.time() < deadline:  # torch starts its threads in the warm-up
            threads = [int(t) for t in os.listdir(f"/proc/{trainer.process.pid}/task")]
            time.sleep(0.05)
        assert len(threads) > 1
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        settings = _thread_settings(threads)
        assert trainer.process.pid in settings  # the main thread at least is still there to read
        # SCHED_OTHER (not idle: beside a busy program it still trains), 10 nicer than the viewer
        assert all(policy == os.SCHED_OTHER for policy, _ in settings.values())
        assert all(nice == min(ours + 10, 19) for _, nice in settings.values())
    finally:
        trainer.close()


def _thread_settings(threads):
    """{thread id: (scheduling policy, niceness)} of the threads still running: a short-lived thread
    (torch's warm-up starts some) may end between listing /proc/PID/task and reading it."""
    settings = {}
    for t in threads:
        try:
            settings[t] = (os.sched_getscheduler(t), os.getpriority(os.PRIO_PROCESS, t))
        except ProcessLookupError:
            continue
    return settings


CLOSE_WITH_UNREAD_PREVIEW = textwrap.dedent('''
    import threading, time
    import numpy as np
    from napari_unet.trainer.process import TrainerProcess
    from napari_unet.trainer.protocol import PreviewRequest

    trainer = TrainerProcess()
    # the view moved just as training ended: a preview image the child will never read, larger
    # than the pipe's buffer, so the queue's feeder thread is stuck writing it
    trainer.set_preview(PreviewRequest(np.zeros((1, 768, 768), np.uint16), (0, 768, 0, 768), ((), None)))
    time.sleep(0.5)
    start = time.time()
    trainer.close()
    time.sleep(0.2)
    print(f"closed {time.time() - start:.1f} {threading.active_count()}")
''')


def test_close_does_not_wait_for_a_preview_the_child_never_reads(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(CLOSE_WITH_UNREAD_PREVIEW)
    # before the fix, close() (and then the interpreter's exit) waited forever on the feeder thread
    proc = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=30)
    assert proc.stdout.startswith("closed"), proc.stderr
    _, seconds, threads = proc.stdout.split()
    assert float(seconds) < 10 and threads == "1"  # no feeder thread left behind either


def test_closing_an_unused_trainer_does_not_wait_for_its_imports():
    """A viewer closed right after it opened: the child holds nothing of the user's yet, so it is
    ended at once instead of after the Quit it would read only once torch is imported."""
    import signal

    from napari_unet.trainer.process import TrainerProcess

    trainer = TrainerProcess()
    start = time.perf_counter()
    trainer.close()
    assert not trainer.is_alive() and trainer.process.exitcode == -signal.SIGTERM
    assert time.perf_counter() - start < 3  # close() waited 3 s for a Quit the importing child did not read


def test_previews_carry_probabilities_only_for_a_whole_2d_image():
    from napari_unet.trainer.child import _send_preview
    from napari_unet.trainer.protocol import PreviewRequest

    class Collect(list):
        put = list.append

    probs = np.zeros((2, 32, 32), np.float32)
    probs[0], probs[1, 8:20, 8:20] = 0.5, 1  # one 12 x 12 object
    sent = Collect()
    _send_preview(sent, probs, True, 1, 0.5, PreviewRequest(None, None, ((), None)))  # a whole 2D image
    _send_preview(sent, probs, True, 2, 0.5, PreviewRequest(None, (0, 32, 0, 32), ((), None)))  # a window
    _send_preview(sent, probs, False, 3, 0.5, PreviewRequest(None, None, ((4,), None)))  # a plane of a stack
    whole, window, plane = sent
    assert whole.probabilities.dtype == np.float16 and whole.probabilities.shape == (2, 32, 32)
    assert window.probabilities is None and plane.probabilities is None  # pasted as labels alone
    assert window.labels.max() == 1 and plane.labels.max() == 1  # the labels are there


def test_event_reader_skips_a_message_that_does_not_unpickle_with_a_notice():
    import multiprocessing as mp

    from napari_unet.trainer.process import EventReader
    from napari_unet.trainer.protocol import Notice, Step

    receiver, sender = mp.Pipe(duplex=False)
    reader = EventReader(receiver)
    sender.send_bytes(b"not a pickle")
    sender.send(Step(2, 0.5, 1.0, 0.01, 1e6))
    sender.close()
    reader.join(10)
    notice, step = reader.poll()
    assert isinstance(notice, Notice) and "could not be read" in notice.message and step.step == 2


def test_event_reader_hands_over_whole_messages_and_never_blocks_on_a_partial_one():
    import multiprocessing as mp
    import struct

    from napari_unet.trainer.process import EventReader

    receiver, sender = mp.Pipe(duplex=False)
    reader = EventReader(receiver)
    sender.send(("step", 1))
    os.write(sender.fileno(), struct.pack("!i", 1000) + b"x" * 10)  # a sender frozen mid-message
    deadline = time.time() + 10
    got = []
    while not got and time.time() < deadline:
        got = reader.poll()
    start = time.perf_counter()
    assert reader.poll() == [] and time.perf_counter() - start < 0.1  # returns at once
    assert got == [("step", 1)] and not reader.done()
    sender.close()  # the sender dies: reading ends, nothing half-read is handed over
    reader.join(10)
    assert reader.done()


def _events_until(trainer, kind, seconds=120):
    """[(event, arrival time)] until an event of class name ``kind`` arrives."""
    events, deadline = [], time.time() + seconds
    while kind not in [type(e).__name__ for e, _ in events] and time.time() < deadline and not trainer.ended():
        events += [(e, time.perf_counter()) for e in trainer.poll()]
        time.sleep(0.02)
    assert kind in [type(e).__name__ for e, _ in events], events
    return events


def _tiny_job(trainer, budget):
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.training.config import TrainConfig
    from napari_unet.trainer.protocol import TrainJob

    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    ann = np.zeros((40, 40), np.uint8)
    ann[5, 5], ann[30, 30] = 1, 2
    config = TrainConfig(steps=None, time_budget=budget, batch_size=2, patch_size=32, preview_every=100.0)
    trainer.train(TrainJob([image], [ann], config, None, UNetConfig(depth=1, width=4), None, instances=False))


def _pause_mid_job(trainer, budget):
    """Start a tiny job, wait for its first step, then freeze the trainer; the events so far."""
    _tiny_job(trainer, budget)
    events = _events_until(trainer, "Step")
    assert trainer.pause() and trainer.paused
    return events


@pytest.fixture(params=["freeze", "hold"])
def trainer(request):
    """A ready trainer that pauses by freezing (SIGSTOP, Linux) or by holding still between steps."""
    from napari_unet.trainer.process import TrainerProcess

    if request.param == "freeze" and not sys.platform.startswith("linux"):
        pytest.skip("freezing the child (SIGSTOP) is Linux-only; elsewhere it holds still")
    trainer = TrainerProcess()
    trainer.can_freeze = request.param == "freeze"
    _events_until(trainer, "TrainerReady")
    yield trainer
    trainer.close()


def _state(pid: int) -> str:
    """The process state letter: T stopped, S sleeping, R running or waiting for a core (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(") ", 1)[1][0]


def _cpu_seconds(pid: int) -> float:
    """The CPU time (user + system, all threads) the process has used so far, in seconds."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def test_paused_trainer_sends_nothing_and_its_time_budget_waits(trainer):
    before = _pause_mid_job(trainer, budget=2.0)
    time.sleep(0.3)  # events already in the pipe (and the step in progress) still arrive
    before += [(e, None) for e in trainer.poll()]
    last_elapsed = max(e.elapsed for e, _ in before if type(e).__name__ == "Step")
    paused_at = time.perf_counter()
    cpu_before = _cpu_seconds(trainer.process.pid)
    time.sleep(2.5)  # longer than the whole budget
    assert trainer.poll() == []  # paused: not one step
    # frozen, or asleep holding still: either way (almost) no CPU. Not the state letter of a holding
    # trainer: it wakes 50 times a second, and on a loaded machine it waits for a core ("R") as often as
    # it sleeps; a training one would use the whole 2.5 s
    assert _cpu_seconds(trainer.process.pid) - cpu_before < 0.5
    if trainer.can_freeze:  # (Linux)
        assert _state(trainer.process.pid) == "T"
    trainer.resume()
    resumed_at = time.perf_counter()
    events = _events_until(trainer, "TrainingFinished")
    steps = [(e, t) for e, t in events if type(e).__name__ == "Step"]
    # training went on after the pause (a clock that counted the 2.5 s paused would have ended the 2 s
    # budget), and its clock went on from where it stopped: one step later (a loaded CPU: under a second),
    # not 2.5 s later
    assert steps and steps[0][1] >= resumed_at
    assert steps[0][0].elapsed - last_elapsed < 1.5
    assert resumed_at - paused_at >= 2.5


def test_stop_and_close_work_on_a_paused_trainer(trainer):
    _pause_mid_job(trainer, budget=600.0)
    trainer.stop()  # thaws it: the stop flag is shared, and the model must come back
    assert not trainer.paused
    _events_until(trainer, "TrainingFinished")
    _pause_mid_job(trainer, budget=600.0)
    start = time.perf_counter()
    trainer.close()
    assert time.perf_counter() - start < 5 and not trainer.process.is_alive()


@pytest.fixture
def one_trainer():
    """A ready trainer, for tests where how it pauses does not matter (one trainer, not ``trainer``'s two)."""
    from napari_unet.trainer.process import TrainerProcess

    trainer = TrainerProcess()
    _events_until(trainer, "TrainerReady")
    yield trainer
    trainer.close()


def test_a_stopped_round_of_a_model_that_continues_is_still_guarded(one_trainer):
    from napari_unet.engine.training.config import TrainConfig
    from napari_unet.trainer.protocol import TrainJob

    trainer = one_trainer
    _tiny_job(trainer, budget=0.5)
    first = _events_until(trainer, "TrainingFinished")[-1][0]
    image = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    ann = np.zeros((40, 40), np.uint8)
    ann[5, 5], ann[30, 30] = 1, 2
    config = TrainConfig(steps=None, time_budget=600.0, batch_size=2, patch_size=32, preview_every=100.0)
    trainer.train(TrainJob([image], [ann], config, first.model, None, None, instances=False))
    _events_until(trainer, "Step")
    trainer.stop()
    finished = _events_until(trainer, "TrainingFinished")[-1][0]
    assert finished.verdict is not None  # scored against the model it started from, as at the end of its budget
    trainer.train(TrainJob([image], [ann], config, first.model, None, None, instances=False))
    _events_until(trainer, "Step")
    trainer.stop(now=True)  # the viewer closes: the model as it is, at once
    finished = _events_until(trainer, "TrainingFinished")[-1][0]
    assert finished.verdict is None and finished.model is not None


EXIT_WHILE_PAUSED = textwrap.dedent('''
    import time
    from napari_unet.trainer.process import TrainerProcess

    trainer = TrainerProcess()
    while not any(type(e).__name__ == "TrainerReady" for e in trainer.poll()):
        time.sleep(0.05)
    assert trainer.pause()
    print(trainer.process.pid, flush=True)  # and exit without close(), as after a crash in napari
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pausing freezes the child with SIGSTOP (Linux)")
def test_exit_with_a_paused_trainer_ends_it(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(EXIT_WHILE_PAUSED)
    # multiprocessing terminates and joins daemon children at exit: a frozen one would never end
    proc = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert not os.path.exists(f"/proc/{int(proc.stdout)}")


def _gone_or_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] in "ZX"
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pausing freezes the child with SIGSTOP (Linux)")
def test_a_paused_trainer_dies_with_a_killed_viewer(tmp_path):
    import signal

    script = tmp_path / "script.py"
    script.write_text(EXIT_WHILE_PAUSED + "time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert not _gone_or_zombie(child)
        parent.send_signal(signal.SIGKILL)  # no atexit, no close(): only the parent-death signal
        parent.wait(10)
        deadline = time.time() + 10
        while not _gone_or_zombie(child) and time.time() < deadline:
            time.sleep(0.05)
        assert _gone_or_zombie(child)
    finally:
        parent.kill()
        parent.stdout.close()


ORPHANED = textwrap.dedent('''
    import threading, time
    from napari_unet.trainer.process import TrainerProcess

    box = []  # started off the main thread: not freezable, no parent-death signal
    starter = threading.Thread(target=lambda: box.append(TrainerProcess()))
    starter.start()
    starter.join()
    trainer = box[0]
    while not any(type(e).__name__ == "TrainerReady" for e in trainer.poll()):
        time.sleep(0.05)
    print(trainer.process.pid, trainer.can_freeze, flush=True)
    time.sleep(600)
''')


def test_an_idle_trainer_ends_with_a_killed_viewer(tmp_path):
    """An idle child waits on its job queue, whose pipe it holds both ends of: without its
    watch on the parent it stayed forever after napari was killed (any platform)."""
    script = tmp_path / "script.py"
    script.write_text(ORPHANED)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pid, freezable = parent.stdout.readline().split()
        assert freezable == "False" and not _gone_or_zombie(int(pid))
        parent.kill()
        parent.wait(10)
        deadline = time.time() + 10
        while not _gone_or_zombie(int(pid)) and time.time() < deadline:
            time.sleep(0.05)
        assert _gone_or_zombie(int(pid))
    finally:
        parent.kill()
        parent.stdout.close()
