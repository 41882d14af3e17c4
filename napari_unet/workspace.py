"""The user's working state, without Qt: which model is current, the models of the session (each
training round, each load: the history), the undo of corrections, and the predictions as shown.

The widget holds one ``Workspace`` and asks it; it never sets a model itself. So the rules of "which
model is current, which round, which history entry" live here, with plain tests
(``tests/test_workspace.py``), and the widget only shows them. Models in the history are kept in
memory (a few MB each) for the session; ``MAX_HISTORY`` of them, newest last.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

MAX_HISTORY = 10  # models kept in the history, newest last
MAX_UNDO = 10  # corrections that can be undone, newest last


@dataclass
class HistoryEntry:
    """One model of the session: ``label`` as the History box shows it ("3. round 2, 180 steps, 14:02:11")."""

    label: str
    model: object  # a SegmentationModel
    note: str


@dataclass
class Snapshot:
    """What Use corrections (or a restore) changed, to undo it: the annotations and painted objects of
    image ``image`` as they were (``objects`` None: there was no objects layer), the prediction as it was
    shown, and the model that was current."""

    image: str
    annotations_layer: str  # the name of the Labels layer the annotations were in
    annotations: np.ndarray
    objects: np.ndarray | None
    prediction: np.ndarray | None
    model: object


@dataclass
class Workspace:
    """The current model, the history, the undo stack and, per image name, the prediction as last shown
    (``shown``, what Use corrections compares the layer with) and its objects' classes."""

    history: list[HistoryEntry] = field(default_factory=list)
    undo_stack: list[Snapshot] = field(default_factory=list)
    shown: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    _model: object = None
    _numbered: int = 0  # history entries ever made (their numbers keep counting when old ones drop out)

    @property
    def model(self):
        """The current model (a SegmentationModel on the CPU), None before any training or load."""
        return self._model

    # ---- the current model and the history -----------------------------------------------------
    def adopt(self, model, note: str) -> HistoryEntry:
        """Make ``model`` current and remember it in the history (``note``: "trained on cells", "loaded m.pt")."""
        self._model = model
        return self.remember(note)

    def remember(self, note: str) -> HistoryEntry | None:
        """Add the current model to the history; None when there is none."""
        if self._model is None:
            return None
        self._numbered += 1
        steps = self._model.summary.get("total_steps", 0)
        entry = HistoryEntry(f"{self._numbered}. {note}, {steps} steps, {time.strftime('%H:%M:%S')}", self._model, note)
        self.history.append(entry)
        del self.history[:-MAX_HISTORY]
        return entry

    def finish_round(self, model, note: str, verdict=None) -> bool:
        """A training round ended with ``model``: remember it, and make it current unless the regression guard
        (``verdict``, a ``training.guard.Verdict``, or None when there is no earlier model) found it worse
        than the current one on what the user confirmed. Returns whether it became current."""
        if verdict is None or verdict.keep_candidate or self._model is None:
            self.adopt(model, note)
            return True
        current = self._model
        self.adopt(model, f"{note} (not made current)")
        self._model = current
        return False

    def entry_of(self, model) -> HistoryEntry | None:
        return next((e for e in self.history if e.model is model), None)

    def go_to(self, model) -> HistoryEntry | None:
        """Make a model of the history current again (the next Train continues from it); returns its entry,
        None when it is not in the history (nothing changes)."""
        entry = self.entry_of(model)
        if entry is not None:
            self._model = model
        return entry

    def leave(self) -> None:
        """No current model: the next Train starts from the start chosen (a bundled model or a new network);
        the history keeps the models."""
        self._model = None

    def use(self, model) -> None:
        """Make ``model`` current without a history entry (what a failed round trained so far)."""
        self._model = model

    def start_from(self, name: str):
        """With no current model, adopt the bundled model ``name`` (its prediction needs no strokes, the first
        Train fine-tunes it); returns it, or None (a model is current already, or ``name`` is empty:
        a new network). Raises UserInputError for an unknown name."""
        if self._model is not None or not name:
            return None
        from .engine.model import modelfile

        model = modelfile.load_model(name)
        model.summary.setdefault("source", f"{name} (bundled)")
        self.adopt(model, f"bundled {name}")
        return model

    def continued(self, spatial_dims: int):
        """The model Train continues from: the current one, unless it is for other dimensions (a 2D model
        when the 3D U-Net is asked for, or the other way round); then None (a new one)."""
        if self._model is None or self._model.config.spatial_dims != spatial_dims:
            return None
        return self._model

    # ---- undo of corrections -------------------------------------------------------------------
    def push_undo(self, image: str, annotations_layer: str, annotations, objects=None) -> Snapshot:
        """Remember the state before corrections change the annotations (in the layer ``annotations_layer``)
        and the painted objects (None: there are none yet) of ``image``."""
        objects = None if objects is None else np.array(objects, copy=True)
        shot = Snapshot(image, annotations_layer, np.array(annotations, copy=True), objects, self.shown.get(image),
                        self._model)
        self.undo_stack.append(shot)
        del self.undo_stack[:-MAX_UNDO]
        return shot

    def drop_undo(self, shot: Snapshot) -> None:
        """Forget ``shot`` (pushed for corrections that were then not applied)."""
        if self.undo_stack and self.undo_stack[-1] is shot:
            self.undo_stack.pop()

    @property
    def can_undo(self) -> bool:
        return bool(self.undo_stack)

    def undo(self) -> Snapshot | None:
        """Take back the last corrections: the current model and the shown prediction become what they were;
        returns the snapshot (its annotations and objects for the layers), None when there is none."""
        if not self.undo_stack:
            return None
        shot = self.undo_stack.pop()
        if shot.prediction is not None:
            self.shown[shot.image] = shot.prediction
        self._model = shot.model
        return shot
