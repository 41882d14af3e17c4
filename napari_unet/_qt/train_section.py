"""The widget's Train section and its training: the settings (Start from, History, New model, all
images, 3D, time budget) and the loss plot; Train / Stop (in the header), the trainer's events and
the live previews.

A mixin of ``UNetWidget`` that builds its section (``build_train_section``) and handles its buttons
(it uses ``self.viewer``, ``self.workspace``, ``self._trainer``, ...). Training runs in a separate
process (``trainer.process``); a QTimer drains its events on the GUI thread.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..errors import UserInputError
from .layers import image_array, voxel_size
from .notify import notify

PREVIEW_EVERY_S = 2.0
FIRST_PREVIEW_S = 0.5
AUTO_START = "auto"  # Start from: the bundled model that agrees with the strokes, else a new network
CLOSE_WAIT_S = 10.0  # closing the viewer mid-round: how long to wait for the round's model, to save it


class TrainSection:
    """build_train_section, train, stop, close_trainer and the handlers of trainer events."""

    pause_while_view_moves = True  # see _on_view_changed

    def build_train_section(self):
        """The Train tab: Start from, History / New model, Train on all annotated images, 3D U-Net, Time
        budget, and the loss plot."""
        from magicgui.widgets import CheckBox, ComboBox, Container, PushButton, SpinBox

        from .loss_plot import LossPlot

        self.start_from = ComboBox(label="Start from", choices=self._start_choices,
                                   tooltip="with no model yet (or after New model): a bundled model that predicts "
                                           "before any stroke and that Train fine-tunes, or a new network")
        self.history_combo = ComboBox(label="History", choices=self._history_choices,
                                      tooltip="the models of this session (each training round, each load): "
                                              "pick one to go back to it")
        self.new_model_button = PushButton(text="New model", tooltip="the next Train starts from the Start from choice")
        self.all_images = CheckBox(text="Train on all annotated images")
        self.use_3d = CheckBox(text="3D U-Net (volumes)",
                               tooltip="train a 3D U-Net on 3D patches around your strokes (needs a Z axis); "
                                       "the layer's scale gives the voxel size (anisotropy). "
                                       "Unticked: a 2D U-Net on the painted planes")
        self.time_budget = SpinBox(label="Time budget (s)", value=60, min=5, max=3600, step=5)
        self.new_model_button.clicked.connect(self.new_model)
        self.history_combo.changed.connect(self.go_to_round)
        self.start_from.changed.connect(lambda _v: self.update_model_info())
        section = Container(labels=True, widgets=[
            self.start_from,
            Container(widgets=[self.history_combo, self.new_model_button], layout="horizontal", labels=True),
            self.all_images, self.use_3d, self.time_budget,
        ])
        self.loss_plot = LossPlot()
        section.native.layout().addWidget(self.loss_plot)
        return section

    def _ensure_trainer(self):
        from ..trainer.process import TrainerProcess, take_prestarted

        if self._trainer is None or not self._trainer.is_alive():
            self._trainer = take_prestarted() or TrainerProcess()
        return self._trainer

    @property
    def is_training(self) -> bool:
        return self._training_layer is not None

    def _training_pairs(self):
        """[(image layer, annotation layer)], the current pair first; raises UserInputError."""
        image, ann = self.image_combo.value, self.annotation_combo.value
        if image is None:
            raise UserInputError("no image layer: open an image first")
        if ann is None:
            raise UserInputError("no annotation layer: press 'New annotations' and paint 1 = background, 2 = object")
        pairs = [(image, ann)]
        if self.all_images.value:
            from napari.layers import Image

            for layer in self.viewer.layers:
                other = f"{layer.name} annotations"
                if isinstance(layer, Image) and layer is not image and other in self.viewer.layers:
                    pairs.append((layer, self.viewer.layers[other]))
        return pairs

    def _training_data(self, pairs):
        """The training set of every pair (``dataset.training_set``, as the CLI builds it).

        Annotations are copied: painting during training cannot change what training reads.
        """
        from ..engine.training import dataset

        sources = []
        for image, ann in pairs:
            objects = self.objects_layer(image)
            sources.append((image_array(image), np.array(ann.data, copy=True), self._axes(image),
                            None if objects is None else np.array(objects.data, copy=True)))
        continued = self._continued_model()
        return dataset.training_set(sources, self._spatial(), continued.config.n_classes if continued else None)

    def _training_data_from_start(self, pairs):
        """The training data; with no model yet, the bundled starting model is adopted, unless it
        does not fit these images (channels, classes): then a new network is trained, as said. With
        Start from *auto*, the bundled model that agrees with the strokes, else a new network
        (``training.start``), and the status says which and why."""
        found = self._training_data(pairs)
        if self._auto_start():
            return found  # the trainer chooses, away from the viewer's thread
        adopted = self.adopt_starting_model()
        if adopted is None:
            return found
        from ..engine.layout import fits_channels

        channels = found.images[0].shape[0]
        classes = max(int(np.max(a)) for a in found.annotations) - 1
        fits = fits_channels(channels, adopted.config.in_channels)
        if not fits or classes > adopted.config.n_classes:
            self.workspace.leave()
            notify(f"the bundled {self.start_from.value} model ({adopted.config.in_channels} channel(s), "
                   f"{adopted.config.n_classes} class(es)) does not fit these images ({channels} channel(s), "
                   f"{classes} class(es)); training a new network")
        return found

    def _auto_start(self) -> bool:
        """Whether this Train lets the trainer choose the start by the strokes (Start from *auto*, no model)."""
        return self.model is None and self.start_from.value == AUTO_START and not self.use_3d.value

    def _checked(self, pairs, found):
        """Checked-region masks, one per training plane (only single 2D images have them)."""
        masks = self.checked_masks(pairs)
        if masks is None:
            return None
        if len(masks) != len(found.images) or self._spatial() != "YX":
            notify("checked regions are used on single 2D images only; here they are trained on like the rest")
            return None
        return masks

    def _continued_model(self):
        """The model Train continues from: the current one, unless it is 2D and 3D is ticked (or vice versa)."""
        return self.workspace.continued(3 if self.use_3d.value else 2)

    def train(self):
        """Start training in the background on a snapshot of the chosen layers."""
        if self.is_training:
            notify("training is already running; press Stop first")
            return False
        try:
            pairs = self._training_pairs()
            found = self._training_data_from_start(pairs)
            image = pairs[0][0]
            axes = self._axes(image)
            preview = self._preview_request(image, axes, *self._on_screen(image, axes))
            self._preview_plane = preview.tag[0]
            diameter = self.diameter()
        except UserInputError as exc:
            notify(str(exc), error=True)
            return False
        if not self._classes_confirmed(found):
            return False
        from ..engine.model import modelfile
        from ..engine.model.config import UNetConfig
        from ..engine.training.config import TrainConfig
        from ..trainer.protocol import TrainJob

        self.autosave(pairs)
        if self.model is not None and self._continued_model() is None:
            self.keep_replaced_model(image, len(self._spatial()))
        init = modelfile.model_to_dict(self.model) if self._continued_model() is not None else None
        if init is not None:  # the Classes field names the classes of a model that continues too
            n = init["config"]["n_classes"]
            names = self._names()
            init["config"]["class_names"] = (names + init["config"]["class_names"][len(names):])[:n]
        unet = UNetConfig(class_names=self._names(), channel_axis=found.layout, spatial_dims=len(self._spatial()),
                          voxel_size=voxel_size(image, axes))
        config = TrainConfig(time_budget=float(self.time_budget.value), steps=None, preview_every=PREVIEW_EVERY_S,
                             first_preview=FIRST_PREVIEW_S)
        self._job = TrainJob(found.images, found.annotations, config, init, unet, preview,
                             self.output_mode.value == "instances", found.objects, self._checked(pairs, found),
                             found.axes, diameter, AUTO_START if self._auto_start() else "")
        self._ensure_trainer().train(self._job)
        self._training_layer = image
        self._add_preview_layer(image, axes)
        self._preview_target = (preview.tag[0], preview.window)
        self._training_pairs_snapshot = pairs
        self.losses, self.validation = [], []
        self.loss_plot.set_validation([])
        self._preview_objects = None
        self.progress.value = 0
        self.status.value = "starting..."
        self.train_button.enabled, self.stop_button.enabled = False, True
        self._timer.start()
        return True

    def _classes_confirmed(self, found) -> bool:
        """A new network gets a class per label value painted: when the labels go far beyond the classes
        named (a stroke of 255 would make 254), the user is asked first; False when they say no."""
        from . import notify as notifications

        top = max(int(np.max(a)) for a in found.annotations) - 1
        named = len(self._names())
        if self._continued_model() is not None or top <= named:
            return True
        question = (f"Label {top + 1} is painted, but Classes names {named} class(es) (labels 2-{named + 1}). Train a "
                    f"network of {top} classes (labels 2-{top + 1})? No: nothing is trained; name the classes in "
                    f"Classes, or erase label {top + 1}.")
        if notifications.ask(question):
            return True
        self.status.value = f"not trained: label {top + 1} is beyond the classes named"
        return False

    def stop(self):
        """Stop training at the next step; the model trained so far is kept."""
        if self._trainer is not None and self.is_training:
            self._trainer.stop()
            self.status.value = "stopping..."

    def _poll(self) -> None:
        """Drain trainer events (GUI thread, every 50 ms while training)."""
        from ..trainer import protocol

        if self._trainer is None:
            return
        handlers = {protocol.TrainerReady: lambda event: None, protocol.Notice: self._on_notice,
                    protocol.TrainingStarted: self._on_started, protocol.Step: self._on_step,
                    protocol.PreviewLabels: self._on_preview, protocol.TrainingFinished: self._on_finished,
                    protocol.TrainingFailed: self._on_error, protocol.Validation: self._on_validation}
        for event in self._trainer.poll():
            handlers[type(event)](event)
        if self.is_training and self._trainer.ended():  # not before its last events are handled
            self._end_training("the training process stopped unexpectedly; your layers and the last "
                               "model are kept. Press Train to try again")

    def _on_notice(self, event) -> None:
        notify(event.message)

    def _on_started(self, event) -> None:
        self.device_name = event.device
        self.status.value = f"training on {event.device}, {event.annotated_pixels} annotated pixels"

    def _on_step(self, event) -> None:
        self.losses.append(event.loss)
        budget = self._job.config.time_budget
        self.progress.value = int(1000 * min(event.elapsed / budget, 1.0))
        rate = event.step / max(event.elapsed, 1e-6)
        objects = f" | {self._preview_objects} objects" if self._preview_objects is not None else ""
        self.status.value = (f"{self.device_name} | step {event.step} | loss {event.loss:.3f} | "
                             f"{event.elapsed:.0f}/{budget:.0f} s | {rate:.1f} steps/s{objects}")
        if event.step % 5 == 0:
            self.loss_plot.set_values(self.losses)

    def _on_finished(self, event) -> None:
        from ..engine.model import modelfile

        model = modelfile.model_from_dict(event.model)
        self.use_3d.value = model.config.spatial_dims == 3
        note = f"trained on {self._training_pairs_snapshot[0][0].name}"
        made_current = self.workspace.finish_round(model, note, event.verdict)
        self._show_history()
        steps = model.summary.get("total_steps", 0)
        self.autosave(self._training_pairs_snapshot, model=self.model)
        status = f"model ready: {steps} steps in total on {self.device_name}"
        if event.verdict is not None:
            status += f"; {event.verdict.message}"
        from ..engine.training.rounds import round_warning, split_note

        note = split_note(model)
        if note:
            status += f"; {note}"
        self._end_training(None, status)

        warning = round_warning(model)
        if warning:
            notify(warning, error=True)
            self.status.value = warning
        if not made_current:  # the guard kept the earlier model: say so, and show what it predicts
            notify(event.verdict.message, error=True)
            self.status.value = event.verdict.message
            self.predict()

    def _on_error(self, event) -> None:
        if event.model is not None:
            from ..engine.model import modelfile

            self.workspace.use(modelfile.model_from_dict(event.model))
        self._end_training(event.message)

    def _end_training(self, error: str | None, status: str = "") -> None:
        self._timer.stop()
        if self._trainer is not None:
            self._trainer.resume()
        self._training_layer = None
        self.train_button.enabled, self.stop_button.enabled = True, False
        self.loss_plot.set_values(self.losses)
        empty, self._empty_preview_layer = self._empty_preview_layer, None
        if error and empty is not None and empty in self.viewer.layers:
            self.viewer.layers.remove(empty)  # made at Train, never shown a preview
        if error:
            self.status.value = "training stopped with an error"
            notify(error, error=True)
        else:
            self.progress.value = 1000
            self.status.value = status
        self.signals.training_finished.emit()

    def close_trainer(self, wait_for_model: float = CLOSE_WAIT_S) -> None:
        """End the trainer (the viewer closes). A round in progress is stopped first and its model, as far as
        it got, autosaved beside the image (or in the cache) within ``wait_for_model`` seconds, so closing
        the viewer mid-round loses nothing the round learned. A Predict in progress is told to quit."""
        with contextlib.suppress(RuntimeError):  # Qt may have deleted the timer already (an exit after an error)
            self._timer.stop()
        worker, self._predict_worker = getattr(self, "_predict_worker", None), None
        if worker is not None:
            with contextlib.suppress(RuntimeError, TypeError):
                worker.quit()
        if self._trainer is None:
            return
        if self.is_training:
            self._save_the_round_on_close(wait_for_model)
        self._trainer.close()

    def _save_the_round_on_close(self, wait: float) -> None:
        """Stop the round and autosave the model it sends (see ``close_trainer``)."""
        import time

        from ..engine.model import modelfile
        from ..trainer import protocol

        self._trainer.stop(now=True)  # the model as it is: no time to score it
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for event in self._trainer.poll():
                model = getattr(event, "model", None)
                if isinstance(event, (protocol.TrainingFinished, protocol.TrainingFailed)):
                    if model is not None:
                        with contextlib.suppress(Exception):  # closing: the layers may be gone already
                            self.autosave(self._training_pairs_snapshot, model=modelfile.model_from_dict(model))
                    return
            if self._trainer.ended():
                return
            time.sleep(0.05)
