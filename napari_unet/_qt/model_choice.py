"""Which model is active, shown: the Model line, the History box (each training round, each load),
New model and Start from. The rules live in ``workspace.Workspace``; this only shows them.

A mixin of ``UNetWidget`` (it uses ``self.workspace``, ``self.model_info``, ``self.history_combo``, ...).
"""

from __future__ import annotations

from .notify import notify


class ModelChoice:
    """remember_model, adopt_model, go_to_round, new_model, adopt_starting_model, update_model_info."""

    def remember_model(self, note: str) -> None:
        """Add the current model to the history (``note``: e.g. "round 3", "loaded x.pt") and show it active."""
        if self.workspace.remember(note) is not None:
            self._show_history()

    def adopt_model(self, model, note: str) -> None:
        """Make ``model`` current, remember it and show it."""
        self.workspace.adopt(model, note)
        self._show_history()

    def _show_history(self) -> None:
        self._updating_history = True
        try:
            self.history_combo.reset_choices()
            self.history_combo.value = self.model
        finally:
            self._updating_history = False
        self.update_model_info()

    def _history_choices(self, _widget=None):
        return [(e.label, e.model) for e in self.workspace.history] or [("(no model yet)", None)]

    def go_to_round(self, model=None) -> None:
        """Make an earlier model of the history the current one (the next Train continues from it)."""
        if self._updating_history or model is None or model is self.model:
            return
        if self.is_training:
            notify("training is running; press Stop before going back to an earlier model", error=True)
            self.history_combo.value = self.model
            return
        entry = self.workspace.go_to(model)
        self.update_model_info()
        if entry is not None:
            notify(f"back to model '{entry.label}'; Train continues from it")

    def new_model(self) -> None:
        """Leave the current model: the next Train starts from the Start-from choice (a bundled model
        or a new network); the current one stays in the history."""
        if self.is_training:
            notify("training is running; press Stop first", error=True)
            return
        self.workspace.leave()
        self.update_model_info()
        start = self.start_from.value
        self.status.value = f"new model: Train fine-tunes {start}" if start else "new model: press Train"
        notify(f"the next Train starts from {start + ' (bundled)' if start else 'a new network'}; "
               "earlier models stay in the model history")

    def _start_choices(self, _widget=None):
        from ..engine.model.bundled import DEFAULT_MODEL, bundled_names

        names = sorted(bundled_names(), key=lambda name: name != DEFAULT_MODEL)
        return ([("auto: what agrees with your strokes", "auto")] + [(f"{name} (bundled)", name) for name in names]
                + [("scratch (new network)", "")])

    def adopt_starting_model(self):
        """With no active model, load the bundled model chosen in Start from (Predict needs no strokes,
        the first Train fine-tunes it); returns it, or None for scratch. With *auto* and no strokes yet,
        the bundled model for the current image (``start.start_for_image``: nuclei-stained for a bright
        background, else nuclei), said in one line."""
        if self.use_3d.value:
            return None
        name = self.start_from.value
        if name == "auto":
            name, why = self._bundled_for_image()
            if why:  # else the image's own error (its axes) is what the user hears next
                notify(f"Start from auto: the bundled {name} model ({why}); your strokes choose once you Train")
        model = self.workspace.start_from(name)
        if model is not None:
            if self._names() == ["object"]:  # the field's default: show the model's class names instead
                self.class_names.value = ", ".join(model.config.class_names)
            self._show_history()
        return model

    def _bundled_for_image(self) -> tuple[str, str | None]:
        """(name, reason): the bundled model for the first plane of the current image; the default model
        and no reason when there is none, or its axes cannot be read."""
        from ..engine.model.bundled import DEFAULT_MODEL
        from ..engine.training.start import start_for_whole_image
        from ..errors import UserInputError
        from .layers import image_array

        layer = self.image_combo.value
        if layer is None:
            return DEFAULT_MODEL, None
        try:
            return start_for_whole_image(image_array(layer), self._axes(layer))
        except UserInputError:
            return DEFAULT_MODEL, None

    def update_model_info(self) -> None:
        """What the active model is: its classes, steps and what it was trained on."""
        model = self.model
        if model is None:
            start = self.start_from.value
            if start == "auto":
                self.model_info.value = ("none: Predict uses the bundled model for the image (nuclei; nuclei-stained "
                                         "on a bright background); Train starts from the bundled model that agrees "
                                         "with your strokes, else a new network")
            else:
                self.model_info.value = (f"none: Predict uses {start} (bundled), Train fine-tunes it" if start
                                         else "none: Train starts a new one")
            return
        cfg, summary = model.config, model.summary
        rounds = summary.get("rounds", [])
        trained = f"{sum(r.get('annotated_pixels', 0) for r in rounds):,} annotated px" if rounds else "loaded"
        from .annotate_section import HINT_CLASSES, short

        source = short(str(summary.get("card", {}).get("name") or summary.get("source", "")), 40)
        names = ", ".join(short(n) for n in cfg.class_names[:HINT_CLASSES]) + \
            (", ..." if cfg.n_classes > HINT_CLASSES else "")
        self.model_info.value = (f"{source + ' · ' if source else ''}{cfg.n_classes} class(es) "
                                 f"({names}) · {summary.get('total_steps', 0)} steps · {trained}"
                                 + (" · 3D" if cfg.spatial_dims == 3 else ""))

