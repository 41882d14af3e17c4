"""The napari dock widget: paint, train in the background with a live preview, correct, export.

With ``_widget_predict`` (showing predictions, corrections, Predict) and
``_widget_files`` (model files, masks, autosave) the only code that touches napari
layers and Qt. Every button calls a method (``train``, ``stop``, ``predict``,
``use_corrections``, ``save_model``, ``load_model``, ``export_masks``,
``new_annotations``) that tests call directly.
Training runs in a separate process (``_trainer_process``); a QTimer drains its
events on the GUI thread, so nothing here ever blocks on training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, ProgressBar,
                              PushButton, SpinBox)
from qtpy.QtCore import QObject, QTimer, Signal

from . import axes as ax
from . import data
from ._layer_data import image_array as _image_array
from ._layer_data import labels_shape as _labels_shape
from ._layer_data import layer_axes, plane_on_screen, preview_pixels, visible_window, voxel_size
from ._widget_files import FileActions, notify as _notify
from ._widget_predict import PredictActions, geometry as _geometry
from .errors import UserInputError

if TYPE_CHECKING:
    import napari

PREVIEW_EVERY_S = 2.0
PREVIEW_MAX_SIDE = 768  # live previews of larger images cover the visible part, at most this square
PREVIEW_MAX_SIDE_3D = 384  # 3D models preview a slab of 9 planes: a smaller window costs the same
FIRST_PREVIEW_S = 0.5


class _Signals(QObject):
    """Qt signals tests (and other plugins) can wait on."""

    preview_updated = Signal()
    training_finished = Signal()
    prediction_finished = Signal()


class UNetWidget(FileActions, PredictActions, Container):
    """U-Net training and prediction for the layers of one viewer."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.signals = _Signals()
        self.model = None  # the current SegmentationModel (CPU), None before training/loading
        self.losses: list[float] = []
        self.last_prediction: dict[str, np.ndarray] = {}  # per image: prediction as last shown
        self.instance_classes: dict[str, np.ndarray] = {}
        self.device_name = ""
        self._trainer = None
        self._training_layer = None  # the image layer being trained on (an object: survives renames)
        self._preview_plane: tuple = ()  # stack indices of the plane previewed during training
        self._predict_worker = None
        self._build()
        self._timer = QTimer()
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._poll)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._on_layers_changed)
        # while training, previews follow the plane and the part of the image on screen
        self._preview_target = None
        self._retarget = QTimer()
        self._retarget.setSingleShot(True)
        self._retarget.setInterval(200)
        self._retarget.timeout.connect(self._retarget_preview)
        for event in (napari_viewer.dims.events.current_step, napari_viewer.camera.events.center,
                      napari_viewer.camera.events.zoom):
            event.connect(self._on_view_changed)
        self.native.destroyed.connect(_closer(self))
        self._on_image_changed()
        for layer in list(napari_viewer.layers):
            self.restore_autosave(layer)
        self._ensure_trainer()  # spawn now: torch is imported before the user presses Train

    # ---- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.image_combo = ComboBox(label="Image", choices=self._image_choices)
        self.axes_edit = LineEdit(label="Axes", value="YX",
                                  tooltip="axes of the image, from TZCYX: e.g. YX, ZYX (z-stack), TYX (time), "
                                          "YXC (RGB), CYX (channels). Stacks train on their painted planes")
        self.annotation_combo = ComboBox(label="Annotations", choices=self._labels_choices)
        self.new_annotations_button = PushButton(text="New annotations")
        self.class_names = LineEdit(label="Classes", value="object",
                                    tooltip="object class names, comma separated: label 2, 3, ...")
        self.paint_hint = Label(label="Paint", value="")
        self.all_images = CheckBox(text="Train on all annotated images")
        self.use_3d = CheckBox(text="3D U-Net (volumes)",
                               tooltip="train a 3D U-Net on 3D patches around your strokes (needs a Z axis); "
                                       "the layer's scale gives the voxel size (anisotropy). "
                                       "Unticked: a 2D U-Net on the painted planes")
        self.time_budget = SpinBox(label="Time budget (s)", value=60, min=5, max=3600, step=5)
        self.output_mode = ComboBox(label="Output", choices=["instances", "semantic"], value="instances")
        self.show_probabilities = CheckBox(text="Show probabilities")
        self.train_button = PushButton(text="Train")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(label="Progress", min=0, max=1000, value=0)
        self.status = Label(label="Status", value="no model yet")
        self.accept_all = CheckBox(text="Accept the whole prediction")
        self.corrections_button = PushButton(text="Use corrections")
        self.predict_target = ComboBox(label="Predict", choices=["current image", "all open images", "folder"])
        self.folder = FileEdit(label="Folder", mode="d", visible=False)
        self.predict_button = PushButton(text="Predict")
        self.export_all = CheckBox(text="Export all predictions")
        self.save_button = PushButton(text="Save model")
        self.load_button = PushButton(text="Load model")
        self.export_button = PushButton(text="Export masks")
        self.extend([
            self.image_combo, self.axes_edit, self.annotation_combo, self.new_annotations_button, self.class_names,
            self.paint_hint, self.all_images, self.use_3d, self.time_budget, self.output_mode, self.show_probabilities,
            Container(widgets=[self.train_button, self.stop_button], layout="horizontal", labels=False),
            self.progress, self.status,
        ])
        from ._loss_plot import LossPlot

        self.loss_plot = LossPlot()
        self.native.layout().addWidget(self.loss_plot)
        rest = Container(labels=True, widgets=[
            self.accept_all, self.corrections_button, self.predict_target, self.folder, self.predict_button,
            self.export_all,
            Container(widgets=[self.save_button, self.load_button, self.export_button], layout="horizontal",
                      labels=False),
        ])
        self.native.layout().addWidget(rest.native)
        self._rest = rest
        self.new_annotations_button.clicked.connect(self.new_annotations)
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(self.stop)
        self.corrections_button.clicked.connect(self.use_corrections)
        self.predict_button.clicked.connect(self.predict)
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())
        self.export_button.clicked.connect(lambda: self.export_masks())
        self.class_names.changed.connect(self._update_hint)
        self.image_combo.changed.connect(self._on_image_changed)
        self.predict_target.changed.connect(lambda v: setattr(self.folder, "visible", v == "folder"))
        self._update_hint()

    def _image_choices(self, _widget=None):
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Image)]

    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Labels) and not layer.name.endswith(" prediction")]

    def _on_layers_changed(self, event=None) -> None:
        self.reset_choices()
        if event is not None and getattr(event, "type", "") == "inserted":
            self.restore_autosave(event.value)
        self._pick_annotation_layer()

    def _on_image_changed(self, *_):
        image = self.image_combo.value
        if image is not None:
            try:
                self.axes_edit.value = layer_axes(image)
            except UserInputError:
                self.axes_edit.value = ""
        self._pick_annotation_layer()

    def _axes(self, layer) -> str:
        """Axes of ``layer``: the Axes field for the current image, guessed for others."""
        if layer is self.image_combo.value and self.axes_edit.value.strip():
            return ax.check_axes(self.axes_edit.value.strip(), np.shape(_image_array(layer)))
        return layer_axes(layer)

    def _spatial(self) -> str:
        """The axes one network input covers: "ZYX" with the 3D U-Net, else "YX"."""
        return "ZYX" if self.use_3d.value else "YX"

    def _pick_annotation_layer(self, *_):
        image = self.image_combo.value
        if image is not None and f"{image.name} annotations" in self.viewer.layers:
            self.annotation_combo.value = self.viewer.layers[f"{image.name} annotations"]

    def _names(self) -> list[str]:
        return [n.strip() for n in self.class_names.value.split(",") if n.strip()] or ["object"]

    def _update_hint(self, *_):
        parts = ["0 = erase", "1 = background"] + [f"{i + 2} = {n}" for i, n in enumerate(self._names())]
        self.paint_hint.value = ", ".join(parts)

    # ---- annotations ---------------------------------------------------------------------
    def new_annotations(self):
        """Add "<image> annotations" (uint8 Labels of the image's shape), label 2 selected."""
        image = self._require_image()
        if image is None:
            return None
        name = f"{image.name} annotations"
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
        else:
            try:
                shape = _labels_shape(image, self._axes(image))
            except UserInputError as exc:
                _notify(str(exc), error=True)
                return None
            layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=name, **_geometry(image, len(shape)))
        layer.selected_label = data.FIRST_CLASS
        layer.mode = "paint"
        layer.brush_size = 5
        self.reset_choices()
        self.annotation_combo.value = layer
        self.viewer.layers.selection.active = layer
        return layer

    def _require_image(self):
        image = self.image_combo.value
        if image is None:
            _notify("open an image first (File > Open, or File > Open Sample > napari-unet)", error=True)
        return image

    # ---- training ------------------------------------------------------------------------
    def _ensure_trainer(self):
        from ._trainer_process import TrainerProcess

        if self._trainer is None or not self._trainer.is_alive():
            self._trainer = TrainerProcess()
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
        """Annotated planes of every pair, their annotations, and the channel layout.

        Annotations are copied: painting during training cannot change what training reads.
        """
        planes, anns, layouts = [], [], set()
        spatial = self._spatial()
        for image, ann_layer in pairs:
            axes = self._axes(image)
            layout = ax.layout_of(axes)
            layouts.add(layout)
            ann = np.array(ann_layer.data, copy=True)
            if ax.is_single_plane(axes, spatial):
                arr = np.asarray(ax.plane(_image_array(image), axes, (), layout, spatial))
                spatial_shape = data.to_channels_first(arr, layout, len(spatial)).shape[1:]
                anns.append(data.check_annotations(ann, spatial_shape))
                planes.append(arr)
            else:
                p, a = ax.annotated_planes(_image_array(image), ann, axes, layout, spatial)
                planes += p
                anns += [data.check_annotations(x, x.shape) for x in a]
        if len(layouts) > 1:
            raise UserInputError("the images have different channel layouts; untick 'Train on all annotated images'")
        if not planes:
            raise UserInputError("no annotations found on any plane; paint background (1) and objects (2) first")
        data.check_training_set(anns, self.model.config.n_classes if self._continued_model() else None)
        return planes, anns, layouts.pop()

    def _continued_model(self):
        """The model Train continues from: the current one, unless it is 2D and 3D is ticked (or vice versa)."""
        if self.model is None or (self.model.config.spatial_dims == 3) == bool(self.use_3d.value):
            return self.model
        return None

    def _on_screen(self, image, axes):
        """(plane, window): the plane on screen and, for large images, the visible part to preview."""
        plane = plane_on_screen(image, axes, self.viewer.dims.point)
        max_side = PREVIEW_MAX_SIDE if self._spatial() == "YX" else PREVIEW_MAX_SIDE_3D
        return plane, visible_window(image, _labels_shape(image, axes)[-2:], max_side)

    def _preview_request(self, image, axes, plane, window):
        """(pixels, window, tag) for the trainer: the plane (a slab around it for 3D models);
        tag = (plane, index of the plane in the slab)."""
        pixels, k = preview_pixels(_image_array(image), axes, plane, ax.layout_of(axes), self._spatial())
        return pixels, window, (plane, k)

    def train(self):
        """Start training in the background on a snapshot of the chosen layers."""
        if self.is_training:
            _notify("training is already running; press Stop first")
            return False
        try:
            pairs = self._training_pairs()
            planes, anns, layout = self._training_data(pairs)
            image = pairs[0][0]
            axes = self._axes(image)
            preview, window, tag = self._preview_request(image, axes, *self._on_screen(image, axes))
            self._preview_plane = tag[0]
        except UserInputError as exc:
            _notify(str(exc), error=True)
            return False
        from . import io

        self.autosave(pairs)
        if self.model is not None and self._continued_model() is None:
            self.keep_replaced_model(image, len(self._spatial()))
        init = io.model_to_dict(self.model) if self._continued_model() is not None else None
        unet = {"class_names": self._names(), "channel_axis": layout, "spatial_dims": len(self._spatial()),
                "voxel_size": voxel_size(image, axes)}
        cfg = {"time_budget": float(self.time_budget.value), "steps": None, "preview_every": PREVIEW_EVERY_S,
               "first_preview": FIRST_PREVIEW_S}
        self._ensure_trainer().train(planes, anns, cfg, init, unet, preview, self.output_mode.value == "instances",
                                     window, tag)
        self._training_layer = image
        self._preview_target = (tag[0], window)
        self._training_pairs_snapshot = pairs
        self.losses = []
        self.progress.value = 0
        self.status.value = "starting..."
        self.train_button.enabled, self.stop_button.enabled = False, True
        self._timer.start()
        return True

    def stop(self):
        """Stop training at the next step; the model trained so far is kept."""
        if self._trainer is not None and self.is_training:
            self._trainer.stop()
            self.status.value = "stopping..."

    def _poll(self) -> None:
        """Drain trainer events (GUI thread, every 50 ms while training)."""
        if self._trainer is None:
            return
        for event in self._trainer.poll():
            getattr(self, f"_on_{event[0]}")(*event[1:])
        if self.is_training and not self._trainer.is_alive():
            self._end_training("the training process stopped unexpectedly; your layers and the last "
                               "model are kept. Press Train to try again")

    def _on_ready(self, _):
        pass

    def _on_notice(self, message: str):
        _notify(message)

    def _on_started(self, device: str, annotated: int):
        self.device_name = device
        self.status.value = f"training on {device}, {annotated} annotated pixels"

    def _on_step(self, step, loss, elapsed, lr, px_per_s):
        self.losses.append(loss)
        budget = float(self.time_budget.value)
        self.progress.value = int(1000 * min(elapsed / budget, 1.0))
        rate = step / max(elapsed, 1e-6)
        self.status.value = (f"{self.device_name} | step {step} | loss {loss:.3f} | "
                             f"{elapsed:.0f}/{budget:.0f} s | {rate:.1f} steps/s")
        if step % 5 == 0:
            self.loss_plot.set_values(self.losses)

    def _on_view_changed(self, event=None) -> None:
        if self.is_training:
            self._retarget.start()  # debounced: one update after the user stops moving for 200 ms

    def _retarget_preview(self) -> None:
        """Send the trainer the plane and window now on screen, if they changed."""
        image = self._training_layer
        if image is None or image not in self.viewer.layers or self._trainer is None:
            return
        try:
            axes = self._axes(image)
            plane, window = self._on_screen(image, axes)
            if (plane, window) == self._preview_target:
                return
            pixels, window, tag = self._preview_request(image, axes, plane, window)
        except UserInputError:
            return
        self._preview_target = (plane, window)
        self._trainer.set_preview(pixels, window, tag)

    def _on_preview(self, step, elapsed, labels, probabilities, classes, window, tag=None):
        plane = self._preview_plane if tag is None else tuple(tag[0])
        image = self._training_layer
        if image is None or image not in self.viewer.layers:  # deleted while training: skip previews
            return
        axes = self._axes(image)
        full_shape = _labels_shape(image, axes)
        name = f"{image.name} prediction"
        if window is not None or len(full_shape) > 2:
            # a part of the image (visible window / one plane): paste it into the full-size layer
            layer = self.viewer.layers[name] if name in self.viewer.layers else None
            full = layer.data if layer is not None and layer.data.shape == full_shape else None
            full = np.zeros(full_shape, labels.dtype) if full is None else np.array(full, labels.dtype)
            y0, y1, x0, x1 = window or (0, full_shape[-2], 0, full_shape[-1])
            full[plane + (slice(y0, y1), slice(x0, x1))] = labels
            labels, probabilities = full, None
        self._show_prediction(image, labels, probabilities, classes)
        self.signals.preview_updated.emit()

    def _on_finished(self, model_blob):
        from . import io

        self.model = io.model_from_dict(model_blob)
        self.use_3d.value = self.model.config.spatial_dims == 3
        steps = self.model.summary.get("total_steps", 0)
        self.autosave(self._training_pairs_snapshot, model=self.model)
        self._end_training(None, f"model ready: {steps} steps in total on {self.device_name}")

    def _on_error(self, message, model_blob):
        if model_blob is not None:
            from . import io

            self.model = io.model_from_dict(model_blob)
        self._end_training(message)

    def _end_training(self, error: str | None, status: str = "") -> None:
        self._timer.stop()
        self._training_layer = None
        self.train_button.enabled, self.stop_button.enabled = True, False
        self.loss_plot.set_values(self.losses)
        if error:
            self.status.value = "training stopped with an error"
            _notify(error, error=True)
        else:
            self.progress.value = 1000
            self.status.value = status
        self.signals.training_finished.emit()

    def close_trainer(self) -> None:
        self._timer.stop()
        if self._trainer is not None:
            self._trainer.close()


def _closer(widget: UNetWidget):
    """Slot for the widget's ``destroyed``: end the trainer process with the viewer."""

    def close(*_):
        widget.close_trainer()
    return close
