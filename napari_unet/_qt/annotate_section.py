"""The widget's Annotate section: the annotation layer, New annotations and New objects, the class
names and what each label value paints, and Restore autosave.

A mixin of ``UNetWidget`` that builds its section (``build_annotate_section``) and handles its buttons
(it uses ``self.viewer``, ``self.image_combo``, ...).
"""

from __future__ import annotations

import numpy as np

from ..engine import convention
from ..errors import UserInputError
from .layers import geometry, labels_shape, style_annotations
from .notify import notify

HINT_CLASSES = 6  # classes the paint hint lists by name
NAME_CHARS = 24  # characters of a class name shown in the hint and the model line


def short(name: str, chars: int = NAME_CHARS) -> str:
    """``name`` cut to ``chars`` characters (an ellipsis shows the cut)."""
    return name if len(name) <= chars else name[:chars - 1] + "…"


class AnnotateSection:
    """build_annotate_section, new_annotations, new_objects, objects_layer."""

    def build_annotate_section(self):
        """The Annotate tab: Annotations, New annotations / New objects, Classes, the paint hint, Restore autosave."""
        from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton

        self.annotation_combo = ComboBox(label="Annotations", choices=self._labels_choices)
        self.new_annotations_button = PushButton(text="New annotations")
        self.new_objects_button = PushButton(
            text="New objects", tooltip="a Labels layer '<image> objects' for painting whole objects, one id each "
                                        "(press M in napari for the next free id): they teach where touching "
                                        "objects part")
        self.class_names = LineEdit(label="Classes", value="object",
                                    tooltip="object class names, comma separated: label 2, 3, ...")
        self.paint_hint = Label(label="Paint", value="")
        self.restore_button = PushButton(text="Restore autosave", visible=False,
                                         tooltip="bring back the annotations (and model) autosaved for this image")
        self.new_annotations_button.clicked.connect(self.new_annotations)
        self.new_objects_button.clicked.connect(self.new_objects)
        self.restore_button.clicked.connect(lambda: self.restore_offered())
        self.class_names.changed.connect(self._update_hint)
        return Container(labels=True, widgets=[
            self.annotation_combo,
            Container(widgets=[self.new_annotations_button, self.new_objects_button], layout="horizontal",
                      labels=False),
            self.class_names, self.paint_hint, self.restore_button,
        ])

    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, Labels) and not layer.name.endswith((" prediction", " objects"))]

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
        """The label values and what they paint, at most a few classes and names of readable length (a list
        of 50 classes or a 3000-character name made the dock thousands of pixels wide)."""
        names = self._names()
        parts = ["0 = erase", "1 = background"] + [f"{i + 2} = {short(n)}" for i, n in enumerate(names[:HINT_CLASSES])]
        more = f", ... ({len(names)} classes, labels 2-{len(names) + 1})" if len(names) > HINT_CLASSES else ""
        self.paint_hint.value = ", ".join(parts) + more

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
