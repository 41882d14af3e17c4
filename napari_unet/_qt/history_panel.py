"""The widget's way back: which model is active, a short history of models (each training round,
each load), New model, and Undo corrections.

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self.model``, ``self.model_info``, ...).
Models in the history are kept in memory (a few MB each) for the session.
"""

from __future__ import annotations

import time

import numpy as np

from .notify import notify

MAX_ROUNDS = 10  # models kept in the history, newest last


class HistoryActions:
    """remember_model, go_to_round, new_model, undo_corrections, update_model_info."""

    def remember_model(self, note: str) -> None:
        """Add the current model to the history (``note``: e.g. "round 3", "loaded x.pt") and show it active."""
        if self.model is None:
            return
        steps = self.model.summary.get("total_steps", 0)
        label = f"{len(self._history) + 1}. {note}, {steps} steps, {time.strftime('%H:%M:%S')}"
        self._history.append((label, self.model))
        del self._history[:-MAX_ROUNDS]
        self._updating_history = True
        try:
            self.history_combo.reset_choices()
            self.history_combo.value = self.model
        finally:
            self._updating_history = False
        self.update_model_info()

    def _history_choices(self, _widget=None):
        return [(label, model) for label, model in self._history] or [("(no model yet)", None)]

    def go_to_round(self, model=None) -> None:
        """Make an earlier model of the history the current one (the next Train continues from it)."""
        if self._updating_history or model is None or model is self.model:
            return
        if self.is_training:
            notify("training is running; press Stop before going back to an earlier model", error=True)
            self.history_combo.value = self.model
            return
        self.model = model
        self.update_model_info()
        notify(f"back to model '{next(lab for lab, m in self._history if m is model)}'; Train continues from it")

    def new_model(self) -> None:
        """Leave the current model: the next Train starts from the Start-from choice (a bundled model
        or a new network); the current one stays in the history."""
        if self.is_training:
            notify("training is running; press Stop first", error=True)
            return
        self.model = None
        self.update_model_info()
        start = self.start_from.value
        self.status.value = f"new model: Train fine-tunes {start}" if start else "new model: press Train"
        notify(f"the next Train starts from {start + ' (bundled)' if start else 'a new network'}; "
               "earlier models stay in the model history")

    def _start_choices(self, _widget=None):
        from ..engine.model.bundled import DEFAULT_MODEL, bundled_names

        names = sorted(bundled_names(), key=lambda name: name != DEFAULT_MODEL)  # the default first: preselected
        return [(f"{name} (bundled)", name) for name in names] + [("scratch (new network)", "")]

    def adopt_starting_model(self):
        """With no active model, load the bundled model chosen in Start from (Predict needs no strokes,
        the first Train fine-tunes it); returns it, or None for scratch."""
        if self.model is not None or not self.start_from.value or self.use_3d.value:
            return None
        from ..engine.model import modelfile

        name = self.start_from.value
        self.model = modelfile.load_model(name)
        self.model.summary.setdefault("source", f"{name} (bundled)")
        self.remember_model(f"bundled {name}")
        return self.model

    def update_model_info(self) -> None:
        """What the active model is: its classes, steps and what it was trained on."""
        model = self.model
        if model is None:
            start = self.start_from.value
            self.model_info.value = (f"none: Predict uses {start} (bundled), Train fine-tunes it" if start
                                     else "none: Train starts a new one")
            return
        cfg, summary = model.config, model.summary
        rounds = summary.get("rounds", [])
        trained = f"{sum(r.get('annotated_pixels', 0) for r in rounds):,} annotated px" if rounds else "loaded"
        source = summary.get("card", {}).get("name") or summary.get("source", "")
        self.model_info.value = (f"{source + ' · ' if source else ''}{cfg.n_classes} class(es) "
                                 f"({', '.join(cfg.class_names)}) · {summary.get('total_steps', 0)} steps · {trained}"
                                 + (" · 3D" if cfg.spatial_dims == 3 else ""))

    def snapshot_for_undo(self, image_layer, annotation_layer, objects_layer) -> None:
        """Before Use corrections changes layers: what Undo corrections restores (and the model)."""
        self._undo.append({
            "image": image_layer.name, "annotations": annotation_layer,
            "annotation_data": np.array(annotation_layer.data, copy=True),
            "objects": objects_layer,
            "objects_data": None if objects_layer is None else np.array(objects_layer.data, copy=True),
            "prediction": self.last_prediction.get(image_layer.name), "model": self.model,
        })
        del self._undo[:-MAX_ROUNDS]
        self.undo_button.enabled = True

    def undo_corrections(self) -> bool:
        """Undo the last Use corrections: the annotations (and painted objects) as they were, and the
        model as it was then (training since is undone too; its models stay in the history)."""
        if not self._undo:
            notify("nothing to undo: no corrections used yet", error=True)
            return False
        if self.is_training:
            notify("training is running; press Stop before undoing corrections", error=True)
            return False
        state = self._undo.pop()
        if state["annotations"] in self.viewer.layers:
            state["annotations"].data = state["annotation_data"]
        objects = state["objects"]
        if objects is not None and objects in self.viewer.layers:
            objects.data = state["objects_data"]
        elif objects is None and f"{state['image']} objects" in self.viewer.layers:
            self.viewer.layers.remove(f"{state['image']} objects")  # made by those corrections
        if state["prediction"] is not None:
            self.last_prediction[state["image"]] = state["prediction"]
        self.model = state["model"]
        self.update_model_info()
        self.undo_button.enabled = bool(self._undo)
        notify("corrections undone: annotations and model are as before them")
        return True
