"""The napari dock widget: paint, train in the background with a live preview, correct, export.

With ``train_panel`` (Train/Stop, trainer events, live previews), ``predict_panel``
(showing predictions, corrections, Predict) and ``files_panel`` (model files, masks,
autosave) the only code that touches napari layers and Qt. Every button calls a method (``train``, ``stop``, ``predict``,
``use_corrections``, ``save_model``, ``load_model``, ``export_masks``,
``new_annotations``) that tests call directly.
Training runs in a separate process (``trainer.process``); a QTimer drains its
events on the GUI thread, so nothing here ever blocks on training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)
from qtpy.QtCore import QObject, QTimer, Signal

from ..engine import convention
from ..engine import layout as ax
from ..errors import UserInputError
from ..workspace import Workspace
from .export_panel import ExportActions
from .files_panel import FileActions
from .history_panel import HistoryActions
from .layers import DERIVED_IMAGES, camera, geometry, image_array, labels_shape, layer_axes, style_annotations
from .notify import notify
from .predict_panel import PredictActions
from .review_panel import ReviewActions
from .train_panel import TrainActions

if TYPE_CHECKING:
    import napari


class _Signals(QObject):
    """Qt signals tests (and other plugins) can wait on."""

    preview_updated = Signal()
    training_finished = Signal()
    prediction_finished = Signal()
    validation_updated = Signal()


class UNetWidget(TrainActions, FileActions, PredictActions, ExportActions, HistoryActions, ReviewActions,
                 Container):
    """U-Net training and prediction for the layers of one viewer."""

    def __init__(self, napari_viewer: "napari.viewer.Viewer"):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.signals = _Signals()
        self.workspace = Workspace()  # the current model, the history, the undo, the predictions as shown
        self.losses: list[float] = []
        self.device_name = ""
        self._trainer = None
        self._training_layer = None  # the image layer being trained on (an object: survives renames)
        self._empty_preview_layer = None  # made at Train for the previews; removed if none came
        self._preview_plane: tuple = ()  # stack indices of the plane previewed during training
        self._predict_worker = None
        self._styled: set[str] = set()  # annotation layers given the annotation colours
        self._updating_history = False
        self._offered = None  # (image layer, autosave folder, identity) offered by Restore autosave
        self._last_count = None  # the object count of the last measured prediction
        self._preview_objects = None  # objects in the last live preview
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
        for event in (napari_viewer.dims.events.current_step, camera(napari_viewer).events.center,
                      camera(napari_viewer).events.zoom):
            event.connect(self._on_view_changed)
        napari_viewer.layers.selection.events.active.connect(self._on_active_layer)
        self.native.destroyed.connect(_closer(self))
        self._on_image_changed()
        self.update_model_info()
        for layer in list(napari_viewer.layers):
            self._watch_painting(layer)
            self.offer_autosave(layer)
        self._ensure_trainer()  # spawn now: torch is imported before the user presses Train

    @property
    def model(self):
        """The current model (the workspace's): None before training or loading."""
        return self.workspace.model

    @property
    def last_prediction(self) -> dict:
        """Per image name, its prediction as last shown (what Use corrections compares the layer with)."""
        return self.workspace.shown

    @property
    def instance_classes(self) -> dict:
        """Per image name, the class of each object id of its prediction."""
        return self.workspace.classes

    # ---- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        self.image_combo = ComboBox(label="Image", choices=self._image_choices)
        self.axes_edit = LineEdit(label="Axes", value="YX",
                                  tooltip="axes of the image, from TZCYX: e.g. YX, ZYX (z-stack), TYX (time), "
                                          "YXC (RGB), CYX (channels). Stacks train on their painted planes")
        self.annotation_combo = ComboBox(label="Annotations", choices=self._labels_choices)
        self.new_annotations_button = PushButton(text="New annotations")
        self.new_objects_button = PushButton(
            text="New objects", tooltip="a Labels layer '<image> objects' for painting whole objects, one id each "
                                        "(press M in napari for the next free id): they teach where touching "
                                        "objects part")
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
        self.model_info = Label(label="Model", value="")
        self.history_combo = ComboBox(label="History", choices=self._history_choices,
                                      tooltip="the models of this session (each training round, each load): "
                                              "pick one to go back to it")
        self.new_model_button = PushButton(text="New model", tooltip="the next Train starts from the Start from choice")
        self.start_from = ComboBox(label="Start from", choices=self._start_choices,
                                   tooltip="with no model yet (or after New model): a bundled model that predicts "
                                           "before any stroke and that Train fine-tunes, or a new network")
        self.restore_button = PushButton(text="Restore autosave", visible=False,
                                         tooltip="bring back the annotations (and model) autosaved for this image")
        self.accept_all = CheckBox(text="Accept the whole prediction")
        self.corrections_button = PushButton(text="Use corrections")
        self.undo_button = PushButton(text="Undo corrections", enabled=False,
                                      tooltip="the annotations and the model as before the last Use corrections")
        self.predict_target = ComboBox(label="Predict", choices=["current image", "all open images", "folder"])
        self.folder = FileEdit(label="Folder", mode="d", visible=False)
        self.predict_button = PushButton(text="Predict")
        self.export_all = CheckBox(text="Export all predictions")
        self.save_button = PushButton(text="Save model")
        self.load_button = PushButton(text="Load model")
        self.export_button = PushButton(text="Export masks")
        self.measure_button = PushButton(text="Export measurements",
                                         tooltip="one row per object of the prediction as it is now: area, "
                                                 "centroid, box, intensities, shape (CSV)")
        from .export_panel import FORMAT_CHOICES

        self.export_format = ComboBox(label="Model format", choices=list(FORMAT_CHOICES))
        self.export_model_button = PushButton(text="Export model",
                                              tooltip="for other tools: a bioimage.io package (deepImageJ, "
                                                      "ilastik, QuPath, bioimageio.core), TorchScript or ONNX")
        self.extend([
            self.image_combo, self.axes_edit, self.annotation_combo,
            Container(widgets=[self.new_annotations_button, self.new_objects_button], layout="horizontal",
                      labels=False),
            self.class_names,
            self.paint_hint, self.all_images, self.use_3d, self.time_budget, self.output_mode, self.show_probabilities,
            Container(widgets=[self.train_button, self.stop_button], layout="horizontal", labels=False),
            self.progress, self.status, self.model_info,
            Container(widgets=[self.history_combo, self.new_model_button], layout="horizontal", labels=True),
            self.start_from,
            self.restore_button,
        ])
        from .loss_plot import LossPlot

        self.loss_plot = LossPlot()
        self.native.layout().addWidget(self.loss_plot)
        rest = Container(labels=True, widgets=[
            *self.review_widgets(),
            self.accept_all,
            Container(widgets=[self.corrections_button, self.undo_button], layout="horizontal", labels=False),
            self.predict_target, self.folder, self.predict_button,
            self.export_all,
            Container(widgets=[self.save_button, self.load_button, self.export_button], layout="horizontal",
                      labels=False),
            self.export_format,
            Container(widgets=[self.export_model_button, self.measure_button], layout="horizontal", labels=False),
        ])
        self.native.layout().addWidget(rest.native)
        self._rest = rest
        _wrap_without_widening(self.status.native)
        self.new_annotations_button.clicked.connect(self.new_annotations)
        self.new_objects_button.clicked.connect(self.new_objects)
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(self.stop)
        self.corrections_button.clicked.connect(self.use_corrections)
        self.undo_button.clicked.connect(self.undo_corrections)
        self.new_model_button.clicked.connect(self.new_model)
        self.history_combo.changed.connect(self.go_to_round)
        self.start_from.changed.connect(lambda _v: self.update_model_info())
        self.restore_button.clicked.connect(lambda: self.restore_offered())
        self.predict_button.clicked.connect(self.predict)
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())
        self.export_button.clicked.connect(lambda: self.export_masks())
        self.export_model_button.clicked.connect(lambda: self.export_model())
        self.measure_button.clicked.connect(lambda: self.export_measurements())
        self._add_shortcuts()
        self.class_names.changed.connect(self._update_hint)
        self.image_combo.changed.connect(self._on_image_changed)
        self.predict_target.changed.connect(lambda v: setattr(self.folder, "visible", v == "folder"))
        self._update_hint()

    SHORTCUTS = {"Ctrl+Alt+T": "train", "Ctrl+Alt+S": "stop", "Ctrl+Alt+P": "predict"}

    def _add_shortcuts(self) -> None:
        """Keys for Train, Stop and Predict anywhere in napari (its own keys and menus leave these free)."""
        from qtpy.QtCore import Qt
        from qtpy.QtGui import QKeySequence
        from qtpy.QtWidgets import QShortcut

        self._shortcuts = []
        for keys, method in self.SHORTCUTS.items():
            shortcut = QShortcut(QKeySequence(keys), self.native)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(getattr(self, method))
            self._shortcuts.append(shortcut)
            button = {"train": self.train_button, "stop": self.stop_button, "predict": self.predict_button}[method]
            button.tooltip = f"{button.text} ({keys})"

    def _image_choices(self, _widget=None):
        from napari.layers import Image

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Image) and not layer.name.endswith(DERIVED_IMAGES)]

    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Labels) and not layer.name.endswith((" prediction", " objects"))]

    def _watch_painting(self, layer) -> None:
        """Painting on a Labels layer pauses a CPU trainer, as moving the view does."""
        from napari.layers import Labels

        if isinstance(layer, Labels):
            layer.events.paint.connect(self._on_view_changed)

    def _on_layers_changed(self, event=None) -> None:
        self.reset_choices()
        if event is not None and getattr(event, "type", "") == "inserted":
            self._watch_painting(event.value)
            # after the event: a sample adds its image, then its annotations, which count as there
            QTimer.singleShot(0, lambda layer=event.value: self.offer_autosave(layer))
        self._pick_annotation_layer()

    def _on_active_layer(self, event=None) -> None:
        """The Image box follows the image layer the user selects in the layer list."""
        from napari.layers import Image

        layer = self.viewer.layers.selection.active
        if isinstance(layer, Image) and not layer.name.endswith(DERIVED_IMAGES) and layer is not self.image_combo.value:
            self.image_combo.value = layer

    def _on_image_changed(self, *_):
        image = self.image_combo.value
        if image is not None:
            try:
                self.axes_edit.value = layer_axes(image, self._model_channels())
            except UserInputError:
                self.axes_edit.value = ""
        if not self.is_training and getattr(self, "_predict_worker", None) is None:
            self.status.value = ""  # what was said about another image does not hold for this one
            self.progress.value = 0
        self._pick_annotation_layer()

    def _axes(self, layer) -> str:
        """Axes of ``layer``: the Axes field for the current image, guessed for others."""
        if layer is self.image_combo.value and self.axes_edit.value.strip():
            return ax.check_axes(self.axes_edit.value.strip(), np.shape(image_array(layer)))
        return layer_axes(layer, self._model_channels())

    def _model_channels(self) -> int | None:
        """The current model's channel count (the layout rule reads a leading axis of that many as C)."""
        return self.model.config.in_channels if self.model is not None else None

    def _spatial(self) -> str:
        """The axes one network input covers: "ZYX" with the 3D U-Net, else "YX"."""
        return "ZYX" if self.use_3d.value else "YX"

    def _pick_annotation_layer(self, *_):
        image = self.image_combo.value
        if image is not None and f"{image.name} annotations" in self.viewer.layers:
            layer = self.viewer.layers[f"{image.name} annotations"]
            self.annotation_combo.value = layer
            if layer.name not in self._styled:  # once: the user may recolour it
                style_annotations(layer)
                self._styled.add(layer.name)

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
                shape = labels_shape(image, self._axes(image))
            except UserInputError as exc:
                notify(str(exc), error=True)
                return None
            layer = self.viewer.add_labels(np.zeros(shape, np.uint8), name=name, **geometry(image, len(shape)))
            style_annotations(layer)
        layer.selected_label = convention.FIRST_CLASS
        layer.mode = "paint"
        layer.brush_size = 5
        self.reset_choices()
        self.annotation_combo.value = layer
        self.viewer.layers.selection.active = layer
        return layer

    def new_objects(self):
        """Add "<image> objects" (uint16 Labels of the image's shape) for painting whole objects,
        one id per object (napari's M key picks the next free id); id 1 selected, brush on."""
        image = self._require_image()
        if image is None:
            return None
        name = f"{image.name} objects"
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
        else:
            try:
                shape = labels_shape(image, self._axes(image))
            except UserInputError as exc:
                notify(str(exc), error=True)
                return None
            layer = self.viewer.add_labels(np.zeros(shape, np.uint16), name=name, **geometry(image, len(shape)))
        layer.selected_label = int(np.max(layer.data)) + 1 if np.size(layer.data) else 1
        layer.mode = "paint"
        layer.brush_size = 10
        self.viewer.layers.selection.active = layer
        notify("paint each whole object with its own id (press M for the next free id); with a few strokes of "
               "background (label 1 in the annotations), Train learns where touching objects part")
        return layer

    def objects_layer(self, image_layer):
        """The "<image> objects" layer of ``image_layer``, or None."""
        name = f"{image_layer.name} objects"
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def _require_image(self):
        image = self.image_combo.value
        if image is None:
            notify("open an image first (File > Open, or File > Open Sample > napari-unet)", error=True)
        return image


def _closer(widget: UNetWidget):
    """Slot for the widget's ``destroyed``: end the trainer process with the viewer."""

    def close(*_):
        widget.close_trainer()
    return close


def _wrap_without_widening(label) -> None:
    """Let a QLabel whose text changes (status every step) wrap instead of widening the dock.

    Otherwise each longer status line made the dock wider and napari's canvas narrower: a
    jump of the layout and a full redraw of the canvas in the middle of training.
    """
    from qtpy.QtWidgets import QSizePolicy

    label.setWordWrap(True)
    label.setMinimumHeight(2 * label.fontMetrics().lineSpacing())  # room for two lines: no vertical jumps either
    policy = label.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    label.setSizePolicy(policy)
