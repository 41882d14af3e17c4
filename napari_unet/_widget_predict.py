"""The widget's prediction side: showing predictions, corrections, Predict.

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self.model``, ``self.output_mode``,
...), kept apart so each file stays readable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import data
from ._layer_data import compact_ids
from ._layer_data import predict_jobs as _predict_jobs
from ._widget_files import notify as _notify
from .errors import UserInputError

_IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".zarr"}


class PredictActions:
    """_show_prediction, use_corrections, predict."""

    # ---- showing predictions ---------------------------------------------------------------
    def _show_prediction(self, image_layer, labels, probabilities=None, classes=None, *, select=True) -> None:
        """Show ``labels`` in "<image> prediction" (made if missing); ``select``: make it the active
        layer if it is new (previews do not: the user may be painting on another layer)."""
        name = f"{image_layer.name} prediction"
        if isinstance(labels, np.ndarray):
            labels = compact_ids(labels)
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = labels
        else:
            active = self.viewer.layers.selection.active
            layer = self.viewer.add_labels(labels, name=name, opacity=0.5, **geometry(image_layer, labels.ndim))
            if not select and active is not None:
                self.viewer.layers.selection.active = active
        if isinstance(labels, np.ndarray):  # lazy (zarr) predictions are not corrected in place
            self.last_prediction[image_layer.name] = np.array(labels, copy=True)
        if probabilities is not None and self.show_probabilities.value:
            fg = np.asarray(probabilities[1:], np.float32).max(0)
            pname = f"{image_layer.name} probabilities"
            if pname in self.viewer.layers:
                self.viewer.layers[pname].data = fg
            else:
                self.viewer.add_image(fg, name=pname, colormap="magma", opacity=0.5, contrast_limits=(0, 1),
                                      **geometry(image_layer, 2))
        if classes is not None:
            self.instance_classes[image_layer.name] = classes

    # ---- corrections ---------------------------------------------------------------------------
    def use_corrections(self):
        """Turn edits of "<image> prediction" (and, if ticked, the whole prediction) into annotations.

        Returns the number of annotation pixels written.
        """
        image = self._require_image()
        if image is None:
            return 0
        pred_name = f"{image.name} prediction"
        if pred_name not in self.viewer.layers or image.name not in self.last_prediction:
            _notify("no prediction to correct yet: press Train or Predict first", error=True)
            return 0
        ann_layer = self.annotation_combo.value or self.new_annotations()
        pred = np.asarray(self.viewer.layers[pred_name].data)
        shown = self.last_prediction[image.name]
        to_annotation = self._prediction_to_annotation(image.name, pred)
        changed = pred != shown
        if self.accept_all.value:
            changed = changed | (np.asarray(ann_layer.data) == data.UNLABELED)
        new = np.array(ann_layer.data, copy=True)
        new[changed] = to_annotation[changed]
        ann_layer.data = new
        self.last_prediction[image.name] = pred.copy()
        n = int(changed.sum())
        _notify(f"{n} pixels added to '{ann_layer.name}'; press Train to continue from the current model")
        return n

    def _prediction_to_annotation(self, image_name: str, pred: np.ndarray) -> np.ndarray:
        classes = None if self.output_mode.value == "semantic" else self.instance_classes.get(image_name)
        return data.prediction_to_annotations(pred, self.output_mode.value == "instances", classes)

    # ---- prediction ------------------------------------------------------------------------------
    def predict(self):
        """Predict the current image, all open images, or a folder, in a background thread."""
        if self.model is None:
            _notify("no model yet: press Train or Load model first", error=True)
            return None
        from napari.layers import Image
        from napari.qt.threading import create_worker

        target = self.predict_target.value
        if target == "folder":
            folder = Path(self.folder.value)
            if not folder.is_dir():
                _notify(f"{folder} is not a folder; choose one with images", error=True)
                return None
            jobs = [("file", p, None) for p in sorted(folder.iterdir()) if p.suffix.lower() in _IMAGE_SUFFIXES
                    and not p.stem.endswith("_masks")]
        else:
            layers = [self.image_combo.value] if target == "current image" else \
                [lay for lay in self.viewer.layers if isinstance(lay, Image) and not lay.name.endswith(" probabilities")]
            try:
                jobs = [("layer", lay, self._axes(lay)) for lay in layers if lay is not None]
            except UserInputError as exc:
                _notify(str(exc), error=True)
                return None
        if not jobs:
            _notify("nothing to predict: no images found", error=True)
            return None
        from . import autosave

        worker = create_worker(_predict_jobs, self.model, jobs, self.output_mode.value == "instances",
                               autosave.cache_root() / "predictions")
        worker.yielded.connect(self._on_predicted)
        worker.errored.connect(lambda exc: _notify(f"prediction failed: {exc}", error=True))
        worker.finished.connect(self._on_prediction_finished)
        self.predict_button.enabled = False
        self.status.value = f"predicting {len(jobs)} image(s)..."
        self._predict_worker = worker
        worker.start()
        return worker

    def _on_predicted(self, result):
        if isinstance(result, float):  # progress
            self.progress.value = int(1000 * result)
            return
        kind, target, labels, probs, classes, done, total = result
        self.progress.value = int(1000 * done / total)
        if kind == "layer" and target.name in self.viewer.layers:
            self._show_prediction(target, labels, probs, classes)
        elif kind == "error":
            _notify(str(labels), error=True)

    def _on_prediction_finished(self):
        self.predict_button.enabled = True
        self.status.value = "prediction done"
        self.signals.prediction_finished.emit()


def geometry(image_layer, ndim: int) -> dict:
    """scale/translate for a layer of ``ndim`` dimensions that overlays ``image_layer``."""
    return {"scale": tuple(image_layer.scale[-ndim:]), "translate": tuple(image_layer.translate[-ndim:])}
