"""The widget's Predict, the upper half of its Apply & export section: the current image, all open
images or a folder, in a background thread; and showing predictions (also the live previews').

A mixin of ``UNetWidget`` that builds its part of the section (``build_apply_section``) and handles
its button (it uses ``self.viewer``, ``self.model``, ``self.output_mode``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .layers import DERIVED_IMAGES, compact_ids, geometry, image_array, keep_selection, place_below
from .notify import notify

_IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".zarr"}  # what Predict takes from a folder


class ApplySection:
    """build_apply_section, predict, _show_prediction."""

    def build_apply_section(self):
        """Predict (current image, all open images, folder), Folder, the Predict button."""
        from magicgui.widgets import ComboBox, Container, FileEdit, PushButton

        self.predict_target = ComboBox(label="Predict", choices=["current image", "all open images", "folder"])
        self.folder = FileEdit(label="Folder", mode="d", visible=False)
        self.predict_button = PushButton(text="Predict")
        self.predict_button.clicked.connect(self.predict)
        self.predict_target.changed.connect(lambda v: setattr(self.folder, "visible", v == "folder"))
        return Container(labels=True, widgets=[self.predict_target, self.folder, self.predict_button])

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
            # under the strokes and painted objects: the prediction never hides what the user painted
            place_below(self.viewer, layer, [self.viewer.layers[n] for n in
                                             (f"{image_layer.name} annotations", f"{image_layer.name} objects")
                                             if n in self.viewer.layers])
            if not select and active is not None:
                self.viewer.layers.selection.active = active
        if isinstance(labels, np.ndarray):  # lazy (zarr) predictions are not corrected in place
            self.last_prediction[image_layer.name] = np.array(labels, copy=True)
        if probabilities is not None and self.show_probabilities.value:
            self._show_probabilities(image_layer, np.asarray(probabilities[1:], np.float32).max(0))
        if probabilities is not None and np.ndim(labels) == 2:
            self.update_review(image_layer, probabilities, labels, instances=classes is not None)
        if classes is not None:
            self.instance_classes[image_layer.name] = classes

    def _show_probabilities(self, image_layer, foreground: np.ndarray) -> None:
        """The probability of any object as a green glow (additive) right above the image, under the
        labels; the layer the user works on stays selected."""
        pname = f"{image_layer.name} probabilities"
        if pname in self.viewer.layers:
            self.viewer.layers[pname].data = foreground
            return
        with keep_selection(self.viewer):
            layer = self.viewer.add_image(foreground, name=pname, colormap="green", blending="additive",
                                          opacity=0.8, contrast_limits=(0, 1), **geometry(image_layer, 2))
            above = self.viewer.layers.index(image_layer) + 1 if image_layer in self.viewer.layers else 0
            self.viewer.layers.move(self.viewer.layers.index(layer), above)

    # ---- corrections ---------------------------------------------------------------------------
    # ---- prediction ------------------------------------------------------------------------------
    def predict(self):
        """Predict the current image, all open images, or a folder, in a background thread."""
        if self.model is None and self.adopt_starting_model() is None:
            notify("no model yet: press Train or Load model first (or Start from a bundled model)", error=True)
            return None
        from napari.layers import Image
        from napari.qt.threading import create_worker

        target = self.predict_target.value
        if target == "folder":
            folder = Path(self.folder.value)
            if not folder.is_dir():
                notify(f"{folder} is not a folder; choose one with images", error=True)
                return None
            from ..engine import files

            images = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in _IMAGE_SUFFIXES
                      and not p.stem.endswith("_masks") and not p.name.startswith(".")]
            outs = files.mask_paths(images, folder)  # unique: cells.tif, cells.png -> cells_tif_masks.tif, ...
            try:
                files.check_outputs(images, [(f"the mask of {p.name}", out) for p, out in zip(images, outs)])
            except UserInputError as exc:
                notify(str(exc), error=True)
                return None
            jobs = [("file", (p, out), None) for p, out in zip(images, outs)]
        else:
            layers = [self.image_combo.value] if target == "current image" else \
                [lay for lay in self.viewer.layers if isinstance(lay, Image) and not lay.name.endswith(DERIVED_IMAGES)]
            try:
                jobs = [("layer", lay, self._axes(lay)) for lay in layers if lay is not None]
            except UserInputError as exc:
                notify(str(exc), error=True)
                return None
        if not jobs:
            notify("nothing to predict: no images found", error=True)
            return None
        from ..engine.disk import autosave

        try:
            diameter = self.diameter()
        except UserInputError as exc:
            notify(str(exc), error=True)
            return None
        worker = create_worker(predict_jobs, self.model, jobs, self.output_mode.value == "instances",
                               autosave.cache_root() / "predictions", diameter)
        worker.yielded.connect(self._on_predicted)
        self._prediction_errors = []
        worker.errored.connect(lambda exc: (self._prediction_errors.append(f"{type(exc).__name__}: {exc}"),
                                            notify(f"prediction failed: {exc}", error=True)))
        worker.finished.connect(self._on_prediction_finished)
        self.predict_button.enabled = False
        self._last_count = None  # the object count of the last image measured, for the status line
        self.status.value = f"predicting {len(jobs)} image(s)..."
        self._predict_worker = worker
        worker.start()
        return worker

    def _on_predicted(self, result):
        try:
            self._show_result(result)
        except RuntimeError as exc:  # the viewer closed meanwhile: its Qt objects are gone, nothing to show
            if "deleted" not in str(exc):
                raise

    def _show_result(self, result):
        if isinstance(result, float):  # progress
            self.progress.value = int(1000 * result)
            return
        self.progress.value = int(1000 * result.done / result.total)
        if result.error is not None:
            self._prediction_errors.append(result.error)
            notify(result.error, error=True)
            return
        name = result.layer.name if result.layer is not None else result.path.name
        for note in result.notes:
            notify(f"{name}: {note}")
        self.show_diameter(result.diameter)
        if result.layer is not None and result.layer.name in self.viewer.layers:
            self._show_prediction(result.layer, result.labels, result.probabilities, result.classes)
            if self.output_mode.value == "instances" and isinstance(result.labels, np.ndarray):
                try:
                    self.measure_prediction(result.layer)  # hover shows each object's measurements
                except UserInputError:
                    pass

    def _on_prediction_finished(self):
        try:
            self.predict_button.enabled = True
        except RuntimeError:  # the viewer closed meanwhile
            return
        self._predict_worker = None
        errors = self._prediction_errors
        if errors:
            self.status.value = f"prediction failed for {len(errors)} image(s): {errors[0]}"
        else:
            self.status.value = self._last_count or "prediction done"
        self.signals.prediction_finished.emit()


@dataclass
class JobResult:
    """One image of a Predict run is done: ``layer`` (an image layer) or ``path`` (a file, its mask
    written beside it, named by ``files.mask_paths``); ``error``: a one-line message instead of a result."""

    done: int
    total: int
    layer: object = None
    path: Path | None = None
    labels: object = None
    probabilities: np.ndarray | None = None
    classes: np.ndarray | None = None
    error: str | None = None
    notes: list = field(default_factory=list)  # what was done beyond the usual (colour to grey, rescaled)
    diameter: float | None = None  # the objects' diameter the image was seen with (None: not rescaled)


def predict_jobs(model, jobs, want_instances, store_folder=None, diameter="auto"):
    """Background generator (a napari thread worker): yields progress (float 0..1) and a JobResult
    per image.

    jobs: [("layer", image layer, axes) | ("file", (path, mask path), None)]. Each image goes through
    ``pipeline.iter_predict_image``, as in the CLI: a single in-memory 2D image keeps its
    probabilities (for display); images backed by dask/zarr are written block by block into a
    zarr store in ``store_folder`` and returned lazily (semantic labels), never loaded whole.
    diameter: the objects' diameter (px), "auto" or None, as ``pipeline.iter_predict_image`` takes it.
    """
    from ..engine import layout as ax
    from ..engine.disk import io
    from ..engine.prediction import pipeline

    for i, (kind, target, axes) in enumerate(jobs):
        layer, (path, mask_path) = (target, (None, None)) if kind == "layer" else (None, target)
        try:
            image = image_array(layer) if kind == "layer" else io.read_image(path, lazy=True)
            axes = ax.check_axes(axes or ax.guess_axes(image.shape, model.config.in_channels), image.shape)
            lazy = not isinstance(image, np.ndarray)
            single_2d = model.config.spatial_dims == 2 and ax.is_single_plane(axes)
            out = _label_store(store_folder, ax.labels_shape(image.shape, axes)) if lazy else None
            result = None
            for event in pipeline.iter_predict_image(model, image, axes, out, instances=want_instances and not lazy,
                                                     probabilities=single_2d and not lazy, diameter=diameter):
                if isinstance(event, pipeline.Progress):
                    yield (i + event.fraction) / len(jobs)
                else:
                    result = event
            if kind == "file":
                io.write_mask(mask_path, result.labels)
            yield JobResult(i + 1, len(jobs), layer, path, result.labels, result.probabilities, result.classes,
                            notes=result.notes, diameter=result.diameter)
        except UserInputError as exc:
            yield JobResult(i + 1, len(jobs), layer, path, error=str(exc))


def _label_store(folder: Path, shape: tuple):
    """A new uint8 zarr array of ``shape`` in ``folder``, for the labels of an image larger than memory."""
    import tempfile

    import zarr

    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = tempfile.mkdtemp(prefix="prediction-", suffix=".zarr", dir=folder)
    except OSError as exc:
        raise UserInputError(f"cannot keep the prediction of a large image in {folder} ({exc.strerror or exc}); set "
                             "NAPARI_UNET_AUTOSAVE to a folder you can write, or predict with the CLI") from None
    chunks = (1,) * (len(shape) - 2) + tuple(min(1024, n) for n in shape[-2:])
    return zarr.open_array(path, mode="w", shape=shape, chunks=chunks, dtype=np.uint8)
