"""The widget's Review section: how predictions are shown, "where to look next" (the uncertainty map,
ranked regions to check with Next region), checked regions that are held out of training and give
a validation score, and the corrections that turn an edited prediction into annotations (and their
undo).

A mixin of ``UNetWidget`` that builds its section (``build_review_section``) and handles its buttons
(it uses ``self.viewer``, ``self.status``, ``self.workspace``, ...).
Layers, per image: "<image> uncertainty" (Image, optional), "<image> regions to check" (Shapes,
ranked boxes, rebuilt with each prediction) and "<image> checked" (Shapes the user draws
rectangles in: fully annotated areas to score the model on, never trained on).
"""

from __future__ import annotations

import numpy as np

from ..engine import convention
from .layers import camera, geometry, keep_selection
from .notify import notify

REGION_COLOUR = "yellow"
CHECKED_COLOUR = "lime"


class ReviewSection:
    """build_review_section, update_review, next_region, mark_checked, checked_masks, use_corrections,
    undo_corrections."""

    def build_review_section(self):
        """The Review tab: Output, Show probabilities, Show uncertainty, Next region / Mark checked, Accept the
        whole prediction, Use corrections / Undo corrections."""
        from magicgui.widgets import CheckBox, ComboBox, Container, PushButton

        self.output_mode = ComboBox(label="Output", choices=["instances", "semantic"], value="instances",
                                    tooltip="instances: one id per object, touching objects split; semantic: a "
                                            "value per class")
        self.show_probabilities = CheckBox(text="Show probabilities")
        self.accept_all = CheckBox(text="Accept the whole prediction",
                                   tooltip="Use corrections also takes every object you did not change as its "
                                           "class, and all the rest as background (not the outlines, nor the "
                                           "specks the model doubts: those stay for the model)")
        self.accept_view = CheckBox(text="Accept the view",
                                    tooltip="Use corrections also takes what you see: the objects on screen as "
                                            "their class, the background on screen as background (zoom to the "
                                            "part you checked; outlines and doubted specks stay for the model)")
        self.corrections_button = PushButton(text="Use corrections")
        self.undo_button = PushButton(text="Undo corrections", enabled=False,
                                      tooltip="the annotations and the model as before the last Use corrections")
        self.corrections_button.clicked.connect(self.use_corrections)
        self.undo_button.clicked.connect(self.undo_corrections)

        self.show_uncertainty = CheckBox(text="Show uncertainty",
                                         tooltip="where the model is unsure (1 - the margin between its two "
                                                 "likeliest classes), over the image")
        self.next_region_button = PushButton(text="Next region",
                                             tooltip="centre the view on the next region to check (the boxes "
                                                     "where the model is least sure, best first)")
        self.checked_button = PushButton(text="Mark checked",
                                         tooltip="draw rectangles over areas you annotated fully: they are held "
                                                 "out of training and give a validation score (Dice, F1) next "
                                                 "to the loss")
        self.next_region_button.clicked.connect(self.next_region)
        self.checked_button.clicked.connect(self.mark_checked)
        self._region_index = -1
        self._uncertainty: dict = {}  # per image name: its last uncertainty map (Y, X)
        self.validation: list = []
        return Container(labels=True, widgets=[
            self.output_mode, self.show_probabilities, self.show_uncertainty,
            Container(widgets=[self.next_region_button, self.checked_button], layout="horizontal", labels=False),
            Container(widgets=[self.accept_view, self.accept_all], layout="horizontal", labels=False),
            Container(widgets=[self.corrections_button, self.undo_button], layout="horizontal", labels=False),
        ])

    # ---- uncertainty and regions ---------------------------------------------------------------
    def update_review(self, image_layer, probabilities, labels, instances: bool = True,
                      plane: tuple = ()) -> None:
        """With new class probabilities (K, Y, X) of ``image_layer`` and the labels (Y, X) shown from
        them (object ids, or semantic classes when not ``instances``; ``plane``: its indices along the
        stack axes): the regions to check, about one object in size, and the uncertainty layer when
        asked for."""
        from ..engine.prediction import uncertainty

        u = uncertainty.uncertainty_map(np.asarray(probabilities, np.float32))
        self._uncertainty[image_layer.name] = u
        regions = uncertainty.suggest_regions(u, side=uncertainty.region_side(labels, instances), plane=tuple(plane))
        with keep_selection(self.viewer):
            if self.show_uncertainty.value:
                self._show_uncertainty(image_layer, u)
            self._show_regions(image_layer, regions)

    def doubt_column(self, image_layer, labels, ids) -> dict:
        """{"doubt": per object of ``ids``, the mean uncertainty over it and its outline} when the
        image's last uncertainty map fits ``labels``, else {} (object-level doubt, shown on hover)."""
        from ..engine.prediction.uncertainty import object_doubt

        u = self._uncertainty.get(image_layer.name)
        if u is None or np.shape(u) != np.shape(labels) or len(ids) == 0:
            return {}
        doubt = object_doubt(np.asarray(labels), u)
        return {"doubt": np.round(doubt[np.clip(np.asarray(ids), 0, len(doubt) - 1)], 3)}

    def _show_uncertainty(self, image_layer, u) -> None:
        name = f"{image_layer.name} uncertainty"
        if name in self.viewer.layers:
            self.viewer.layers[name].data = u
            return
        self.viewer.add_image(u, name=name, colormap="magenta", blending="additive", opacity=0.7,
                              contrast_limits=(0, 1), **geometry(image_layer, 2))

    def _show_regions(self, image_layer, regions) -> None:
        name = f"{image_layer.name} regions to check"
        lead = len(regions[0].plane) if regions else 0
        boxes = [np.array([[*r.plane, r.y0, r.x0], [*r.plane, r.y1, r.x1]], float) for r in regions]
        features = {"rank": [r.rank for r in regions], "score": [r.score for r in regions]}
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = []
            if boxes:
                layer.add_rectangles(boxes)
            layer.features = features
        else:
            layer = self.viewer.add_shapes(boxes or None, shape_type="rectangle", name=name,
                                           edge_color=REGION_COLOUR, face_color="transparent", edge_width=2,
                                           features=features, text={"string": "{rank}", "color": REGION_COLOUR,
                                                                    "anchor": "upper_left"},
                                           **geometry(image_layer, 2 + lead))
        self._region_index = -1

    def next_region(self) -> tuple | None:
        """Centre and zoom the view on the next region to check of the selected image (cycling);
        returns its (y0, x0, y1, x1), or None when there is none."""
        from ..engine.prediction.uncertainty import DEFAULT_REGION_SIDE

        image = self.image_combo.value
        name = f"{image.name} regions to check" if image is not None else ""
        if not name or name not in self.viewer.layers or len(self.viewer.layers[name].data) == 0:
            notify("no regions to check yet: Train or Predict first", error=True)
            return None
        layer = self.viewer.layers[name]
        self._region_index = (self._region_index + 1) % len(layer.data)
        corners = np.asarray(layer.data[self._region_index])
        lo, hi = corners.min(0), corners.max(0)
        world_lo, world_hi = (np.asarray(layer.data_to_world(c)) for c in (lo, hi))
        if len(lo) > 2:  # a stack: go to the region's plane first
            step = list(self.viewer.dims.current_step)
            for axis, value in enumerate(world_lo[:-2]):
                step[len(step) - len(lo) + axis] = int(round(value))
            self.viewer.dims.current_step = tuple(step)
        cam = camera(self.viewer)
        cam.center = tuple((world_lo[-2:] + world_hi[-2:]) / 2)
        canvas = getattr(getattr(self.viewer, "canvas", None), "size", None) or getattr(
            self.viewer, "_canvas_size", (600, 800))
        # a box fills 60 % of the view's shorter side, but a smaller box than DEFAULT_REGION_SIDE is shown
        # at that one's zoom: a 32-px box on a nucleus keeps its neighbours in view, to compare it with
        side = np.maximum(hi[-2:] - lo[-2:], 1)  # px
        extent = (world_hi[-2:] - world_lo[-2:]) * np.maximum(1, DEFAULT_REGION_SIDE / side)
        cam.zoom = 0.6 * float(np.min(np.asarray(canvas[-2:], float) / np.maximum(extent, 1e-6)))
        rank = int(layer.features["rank"][self._region_index]) if len(layer.features) else self._region_index + 1
        self.status.value = f"region {rank} of {len(layer.data)}: correct it, then Use corrections"
        return tuple(int(v) for v in (*lo[-2:], *hi[-2:]))

    # ---- checked regions and the validation score ----------------------------------------------
    def mark_checked(self):
        """A Shapes layer "<image> checked" in rectangle mode: draw over fully annotated areas."""
        image = self._require_image()
        if image is None:
            return None
        name = f"{image.name} checked"
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
        else:
            layer = self.viewer.add_shapes(None, shape_type="rectangle", name=name, edge_color=CHECKED_COLOUR,
                                           face_color=[0.0, 1.0, 0.0, 0.12], edge_width=2,
                                           ndim=2, **geometry(image, 2))
        self.viewer.layers.selection.active = layer
        layer.mode = "add_rectangle"
        notify("draw rectangles over areas you annotated fully (background and every object): they are "
               "held out of training and scored while it runs")
        return layer

    def checked_masks(self, pairs) -> list | None:
        """Per training pair, a bool (Y, X) mask of its checked rectangles, or None (no layer, or not a
        single 2D plane); None when no image has any."""
        masks = []
        for image, painted in pairs:
            name = f"{image.name} checked"
            layer = self.viewer.layers[name] if name in self.viewer.layers else None
            shape = np.shape(painted.data)
            if layer is None or len(layer.data) == 0 or len(shape) != 2:
                masks.append(None)
                continue
            masks.append(np.asarray(layer.to_masks(shape)).any(axis=0))
        return masks if any(m is not None for m in masks) else None

    def _on_validation(self, event) -> None:
        self.validation.append((event.step, event.dice, event.f1))
        self.loss_plot.set_validation(self.validation)
        self.signals.validation_updated.emit()

    # ---- corrections ---------------------------------------------------------------------------
    def use_corrections(self):
        """Turn edits of "<image> prediction" (and, if ticked, the part on screen or the whole prediction) into
        annotations.

        Semantic predictions: each changed pixel becomes an annotation of its class. Instance
        predictions: erased pixels become background annotations, and each object the user changed
        (redrawn, added, merged, split: ``painted.corrected_objects``) a whole painted object in
        "<image> objects", with its class annotated under it. *Accept the view* also takes what is on
        screen (what the user has looked at), *Accept the whole prediction* all of it, as class
        annotations: the objects as their class, the rest as background. Accepted objects are not made
        painted objects: their outlines and splits are the model's own, and taught back as the user's
        they made it copy its mistakes round after round (4 Usiigaci train fields, 4 rounds: F1 0.825
        -> 0.783 as painted objects, climbing as classes; benchmarks/reports/13-rounds.md). A band along
        the accepted outlines (``painted.accepted_pixels``) and the specks the model doubts
        (``_unsure_objects``) are left unannotated. Earlier annotations stay. Returns the number of
        annotation pixels written; nothing changes (and nothing is pushed to undo) when the layers do not
        fit the image.
        """
        image = self._require_image()
        if image is None:
            return 0
        pred_name = f"{image.name} prediction"
        if pred_name not in self.viewer.layers or image.name not in self.last_prediction:
            notify("no prediction to correct yet: press Train or Predict first", error=True)
            return 0
        ann_layer = self.annotation_combo.value or self.new_annotations()
        if ann_layer is None:
            return 0
        pred = np.asarray(self.viewer.layers[pred_name].data)
        shown = self.last_prediction[image.name]
        objects_layer = self.objects_layer(image)
        shapes = {"the prediction": pred.shape, "what was shown": np.shape(shown),
                  f"'{ann_layer.name}'": np.shape(ann_layer.data)}
        if objects_layer is not None:
            shapes[f"'{objects_layer.name}'"] = np.shape(objects_layer.data)
        if len(set(shapes.values())) > 1:
            listed = ", ".join(f"{k} {tuple(v)}" for k, v in shapes.items())
            notify(f"the layers do not fit one another ({listed}); choose the annotations of this image "
                   "(New annotations) and correct its prediction; nothing was changed", error=True)
            return 0
        self.snapshot_for_undo(image, ann_layer, objects_layer)
        accepted = self._accepted_area(image, pred.shape)
        unsure = self._unsure_objects(image, pred) if accepted.any() else ()
        if accepted.any():  # its outlines, and the specks it doubts, are left to the model
            from ..engine.training.painted import accepted_pixels

            accepted = accepted_pixels(pred, accepted, unsure=unsure)
        to_annotation = self._prediction_to_annotation(image.name, pred)
        changed = (pred != shown) | (accepted & (np.asarray(ann_layer.data) == convention.UNLABELED))
        new = np.array(ann_layer.data, copy=True)
        added = ""
        if self.output_mode.value == "instances":
            from ..engine.training import painted

            ids = painted.corrected_objects(pred, shown)  # accepted objects stay class annotations (see above)
            ids = ids[ids > 0]
            if len(ids):
                layer = objects_layer or self.new_objects()
                layer.data, n_objects = painted.add_objects(layer.data, pred, ids)
                changed |= np.isin(pred, ids) & (pred > 0)  # the class under every new object
                added = f" and {n_objects} object(s) to '{layer.name}'"
        new[changed] = to_annotation[changed]
        ann_layer.data = new
        self.last_prediction[image.name] = pred.copy()
        n = int(changed.sum())
        left = f"; {len(unsure)} speck(s) the model doubts were left unannotated (check them with Next " \
               "region)" if len(unsure) else ""
        notify(f"{n} pixels added to '{ann_layer.name}'{added}{left}; press Train to continue from the current "
               "model")
        return n

    def _unsure_objects(self, image, pred) -> np.ndarray:
        """Ids of the specks of an instance prediction ``pred`` (Y, X) that the model doubts
        (``uncertainty.unsure_objects``, from the image's last uncertainty map): Accept leaves them out, since
        a naive Accept taught the model's specks of debris as objects (Usiigaci val, 4 rounds from ``cells``
        accepting the rest: benchmarks/reports/13-rounds.md). Empty for semantic output, or when the map does
        not fit (stacks: it is kept for one plane)."""
        from ..engine.prediction.uncertainty import unsure_objects

        u = self._uncertainty.get(image.name)
        if self.output_mode.value != "instances" or u is None or np.shape(u) != np.shape(pred):
            return np.zeros(0, np.int64)
        return unsure_objects(pred, u)

    def _accepted_area(self, image, shape) -> np.ndarray:
        """Where the prediction is accepted as it is: everywhere (Accept the whole prediction), the part of the
        plane on screen (Accept the view), or nowhere; bool of the labels' ``shape``."""
        area = np.zeros(shape, bool)
        if self.accept_all.value:
            area[...] = True
        elif self.accept_view.value:
            from .layers import on_screen_box, plane_on_screen

            axes = self._axes(image)
            y0, y1, x0, x1 = on_screen_box(image, shape[-2:])
            plane = plane_on_screen(image, axes, self.viewer.dims.point)
            area[plane + (slice(y0, y1), slice(x0, x1))] = True
        return area

    def _prediction_to_annotation(self, image_name: str, pred: np.ndarray) -> np.ndarray:
        classes = None if self.output_mode.value == "semantic" else self.instance_classes.get(image_name)
        return convention.prediction_to_annotations(pred, self.output_mode.value == "instances", classes)

    def snapshot_for_undo(self, image_layer, annotation_layer, objects_layer):
        """Before Use corrections changes layers: what Undo corrections restores (and the model)."""
        shot = self.workspace.push_undo(image_layer.name, annotation_layer.name, annotation_layer.data,
                                        None if objects_layer is None else objects_layer.data)
        self.undo_button.enabled = True
        return shot

    def undo_corrections(self) -> bool:
        """Undo the last Use corrections: the annotations (and painted objects) as they were, and the
        model as it was then (training since is undone too; its models stay in the history)."""
        if not self.workspace.can_undo:
            notify("nothing to undo: no corrections used yet", error=True)
            return False
        if self.is_training:
            notify("training is running; press Stop before undoing corrections", error=True)
            return False
        shot = self.workspace.undo()
        if shot.annotations_layer in self.viewer.layers:
            self.viewer.layers[shot.annotations_layer].data = shot.annotations
        objects = f"{shot.image} objects"
        if shot.objects is not None and objects in self.viewer.layers:
            self.viewer.layers[objects].data = shot.objects
        elif shot.objects is None and objects in self.viewer.layers:
            self.viewer.layers.remove(objects)  # made by those corrections
        self.update_model_info()
        self.undo_button.enabled = self.workspace.can_undo
        notify("corrections undone: annotations and model are as before them")
        return True
