"""What the CLI prints: progress to stderr, about once a second, and errors as one line."""

from __future__ import annotations

import sys


def fail(message: str, code: int = 2) -> int:
    """Print ``napari-unet: error: message`` and return the exit status."""
    print(f"napari-unet: error: {message}", file=sys.stderr)
    return code


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class FitProgress:
    """Iterates training events, printing progress about once a second; ``model`` is the model
    being trained from the first event on (so an interrupted run can still save it)."""

    def __init__(self):
        self.model = None
        self.events = None
        self.finished = None  # the Finished event (its verdict and the earlier model, for --keep-better)

    def close(self) -> None:
        """End training where it is (as Stop does: the model is left usable, its round recorded)."""
        if self.events is not None:
            self.events.close()

    def run(self, events):
        """Iterate ``events`` (``train.fit``) to the end; return the trained model."""
        from ..engine.training import train

        self.events, last = events, 0.0
        for event in events:
            if isinstance(event, train.Started):
                self.model = event.model
                log(f"training on {event.device}, {event.annotated_pixels} annotated pixels")
            elif isinstance(event, train.Notice):
                log(event.message)
            elif isinstance(event, train.Validation):
                log(f"validation at step {event.step}: Dice {event.dice:.3f}, F1 {event.f1:.3f} "
                    f"({event.pixels} checked pixels)")
            elif isinstance(event, train.Step) and event.elapsed - last >= 1.0:
                last = event.elapsed
                log(f"step {event.step:5d}  loss {event.loss:.4f}  {event.elapsed:5.1f} s  "
                    f"{event.pixels_per_second / 1e6:.2f} Mpx/s")
            elif isinstance(event, train.Finished):
                self.finished = event
                r = event.summary["rounds"][-1]
                loss = f"{r['final_loss']:.4f}" if r["final_loss"] is not None else "n/a"
                log(f"done: {r['steps']} steps in {r['seconds']:.1f} s, loss {loss}")
                if event.verdict is not None:
                    v = event.verdict
                    log(f"{v.what}: this round's model {v.candidate:.3f}, the one it started from {v.current:.3f}")
        return self.model


def run_fit(events):
    """Iterate training events with progress; return the model (``FitProgress().run``)."""
    return FitProgress().run(events)


def time_budget(args) -> float | None:
    """The seconds to train for: ``--time-budget``, else none when ``--steps`` is given, else 30."""
    if args.time_budget is not None:
        return args.time_budget
    return None if args.steps else 30.0
