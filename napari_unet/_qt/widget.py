"""The napari dock widget: paint, train in the background with a live preview, correct, export.

A header (image, axes, Train / Stop, progress, status, model) above four sections, as tabs, each
built and handled by its own mixin: ``annotate_section`` (Annotate), ``train_section`` (Train:
settings, the trainer's events, live previews; with ``model_choice``: Start from, History, New
model), ``review_section`` (Review: regions to check, checked regions, corrections and their
undo), ``apply_section`` and ``export_section`` (Apply & export: Predict; model files, masks, other
formats, measurements); ``autosave`` keeps what the user paints and trains. The working state
(which model is current, the history, the undo) is the ``workspace.Workspace``'s. Every button
calls a method (``train``, ``stop``, ``predict``, ``use_corrections``, ``save_model``,
``load_model``, ``export_masks``, ``new_annotations``) that tests call directly.
Training runs in a separate process (``trainer.process``); a QTimer drains its
events on the GUI thread, so nothing here ever blocks on training.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
)
from qtpy.QtCore import QObject, QTimer, Signal

from ..engine import layout as ax
from ..errors import UserInputError
from ..workspace import Workspace
from .annotate_section import AnnotateSection
from .apply_section import ApplySection
from .autosave import AutosaveActions
from .export_section import ExportSection
from .layers import DERIVED_IMAGES, camera, image_array, layer_axes
from .model_choice import ModelChoice
from .notify import notify
from .previews import LivePreviews
from .review_section import ReviewSection
from .train_section import TrainSection

if TYPE_CHECKING:
    import napari


class _Signals(QObject):
    """Qt signals tests (and other plugins) can wait on."""

    preview_updated = Signal()
    training_finished = Signal()
    prediction_finished = Signal()
    validation_updated = Signal()


class UNetWidget(AnnotateSection, TrainSection, LivePreviews, ReviewSection, ApplySection, ExportSection,
                 ModelChoice, AutosaveActions, Container):
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
        self._prediction_errors: list[str] = []
        self._model_files: list[str] = []  # model files loaded in this session (outputs never replace them)
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
        """A header (image, axes, Train / Stop, progress, status, model), then the sections as tabs:
        Annotate, Train, Review, Apply & export."""
        from qtpy.QtWidgets import QTabWidget

        self.image_combo = ComboBox(label="Image", choices=self._image_choices)
        self.axes_edit = LineEdit(label="Axes", value="YX",
                                  tooltip="axes of the image, from TZCYX: e.g. YX, ZYX (z-stack), TYX (time), "
                                          "YXC (RGB), CYX (channels). Stacks train on their painted planes")
        self.diameter_edit = LineEdit(label="Diameter (px)", value="auto",
                                      tooltip="the objects' diameter in pixels: the image is seen with its objects at "
                                              "the size the model learned, masks come at the image's size. auto: "
                                              "estimated (from your painted objects, else a first prediction); "
                                              "none: the image as it is")
        self.diameter_used = Label(value="")
        self.train_button = PushButton(text="Train")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(label="Progress", min=0, max=1000, value=0)
        self.status = Label(label="Status", value="no model yet")
        self.model_info = Label(label="Model", value="")
        self.extend([
            self.image_combo, self.axes_edit,
            Container(widgets=[self.diameter_edit, self.diameter_used], layout="horizontal", labels=True),
            Container(widgets=[self.train_button, self.stop_button], layout="horizontal", labels=False),
            self.progress, self.status, self.model_info,
        ])
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        sections = {"Annotate": [self.build_annotate_section()], "Train": [self.build_train_section()],
                    "Review": [self.build_review_section()],
                    "Apply && export": [self.build_apply_section(), *self.build_export_section()]}
        self._pages = []  # magicgui containers in Qt tabs: reset_choices reaches them through this list
        for title, parts in sections.items():
            page = Container(labels=True, widgets=parts)
            page.native.layout().addStretch(1)
            self.tabs.addTab(page.native, title)
            self._pages.append(page)
        self.native.layout().addWidget(self.tabs)
        for label in (self.status, self.model_info, self.paint_hint):
            _wrap_without_widening(label.native)
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(self.stop)
        self._add_shortcuts()
        self.image_combo.changed.connect(self._on_image_changed)
        self._update_hint()

    def diameter(self):
        """The Diameter field: "auto", None ("none", empty) or a number of pixels; UserInputError otherwise."""
        text = self.diameter_edit.value.strip().lower()
        if text in ("auto", ""):
            return "auto" if text else None
        if text in ("none", "off"):
            return None
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (np.isfinite(value) and 1 <= value <= 10_000):
            raise UserInputError(f"Diameter {self.diameter_edit.value!r}: type a number of pixels (e.g. 30), auto or none")
        return value

    def show_diameter(self, used) -> None:
        """Beside the Diameter field: the diameter the last image was seen with, and the model's."""
        own = self.model.config.diameter if self.model is not None else None
        if own is None:
            self.diameter_used.value = "model: any size" if self.model is not None else ""
        elif used is None:
            self.diameter_used.value = f"as it is (model: {own:.0f} px)"
        else:
            self.diameter_used.value = f"used: {used:.0f} px (model: {own:.0f} px)"

    def reset_choices(self, *_) -> None:
        """Refresh the layer boxes of the header and of every section (napari calls this when layers change)."""
        super().reset_choices()
        for page in getattr(self, "_pages", []):
            page.reset_choices()

    def show_section(self, title: str) -> None:
        """Bring the tab ``title`` ("Annotate", "Train", "Review", "Apply & export") to the front."""
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index).replace("&&", "&") == title:
                self.tabs.setCurrentIndex(index)

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
        """Axes of ``layer``: the Axes field for the current image, guessed for others. The widget works on
        the plane napari shows, the last two axes (channels aside): they must be Y and X, in that order."""
        if layer is self.image_combo.value and self.axes_edit.value.strip():
            axes = ax.check_axes(self.axes_edit.value.strip(), np.shape(image_array(layer)))
            if ax.labels_axes(axes)[-2:] != "YX":
                raise UserInputError(f"Axes {axes}: the widget works on the plane napari shows, whose last two axes "
                                     "must be Y and X (e.g. ZYX, TZYX, YXC, CYX); for this image type them in that "
                                     "order, or predict with napari-unet predict --axes")
            return axes
        return layer_axes(layer, self._model_channels())

    def _model_channels(self) -> int | None:
        """The current model's channel count (the layout rule reads a leading axis of that many as C)."""
        return self.model.config.in_channels if self.model is not None else None

    def _spatial(self) -> str:
        """The axes one network input covers: "ZYX" with the 3D U-Net, else "YX"."""
        return "ZYX" if self.use_3d.value else "YX"

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
