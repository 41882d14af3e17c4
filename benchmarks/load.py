"""Training under load (issue #20): steps in a 15-s round on a quiet machine and beside 1 or 2 busy
programs (a Python loop each), in the widget's trainer process (SCHED_IDLE on Linux) and in the
CLI's training, with threads chosen from the cores other programs leave free (napari-unet's
default) against every core (``--threads`` pinned to the core count, as before).

    python benchmarks/load.py [--seconds 15]

Needs a machine with no other load (stop other jobs first): it makes its own.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time


def busy() -> None:
    while True:
        pass


def trainer_steps(seconds: float, threads) -> int:
    """Steps of one round in the widget's trainer process (the sample, its scribbles)."""
    from napari_unet.engine.disk import io
    from napari_unet.engine.training.config import TrainConfig
    from napari_unet.sample_data import sample_paths
    from napari_unet.trainer import protocol
    from napari_unet.trainer.process import TrainerProcess

    paths = sample_paths()
    image, scribbles = io.read_image(paths["image"]), io.read_image(paths["scribbles"])
    trainer = TrainerProcess()
    try:
        deadline = time.time() + 120
        while not any(isinstance(e, protocol.TrainerReady) for e in trainer.poll()) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(3)  # its warm-up
        trainer.poll()
        trainer.train(protocol.TrainJob([image], [scribbles], TrainConfig(time_budget=seconds, threads=threads),
                                        instances=False))
        steps = 0
        while time.time() < deadline + seconds + 60:
            for event in trainer.poll():
                if isinstance(event, protocol.Step):
                    steps = event.step
                if isinstance(event, (protocol.TrainingFinished, protocol.TrainingFailed)):
                    return steps
            time.sleep(0.05)
        return steps
    finally:
        trainer.close()


def cli_steps(seconds: float, threads) -> int:
    import subprocess
    import sys
    import tempfile

    from napari_unet.sample_data import sample_paths

    paths = sample_paths()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "napari_unet.cli", "train", str(paths["image"]), "--labels",
               str(paths["scribbles"]), "--out", f"{tmp}/m.pt", "--time-budget", str(seconds)]
        cmd += ["--threads", str(threads)] if threads else []
        err = subprocess.run(cmd, capture_output=True, text=True).stderr
    line = [x for x in err.splitlines() if x.startswith("done:")][-1]
    return int(line.split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("| where | threads | quiet | 1 busy program | 2 busy programs |")
    print("|---|---|---|---|---|")
    for where, run in (("trainer process", trainer_steps), ("CLI", cli_steps)):
        for label, threads in (("free cores (default)", None), (f"all {cores} (before)", cores)):
            row = []
            for n_busy in (0, 1, 2):
                loops = [mp.Process(target=busy, daemon=True) for _ in range(n_busy)]
                for p in loops:
                    p.start()
                try:
                    row.append(run(args.seconds, threads))
                finally:
                    for p in loops:
                        p.terminate()
            print(f"| {where} | {label} | " + " | ".join(str(r) for r in row) + " |", flush=True)


if __name__ == "__main__":
    main()
