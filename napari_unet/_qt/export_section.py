"""The widget's exports, the lower half of its Apply & export section: the model file (Save model,
Load model), the masks, the model for other tools (bioimage.io, TorchScript, ONNX) and the objects'
measurements (CSV, and the prediction layer's ``features``, shown on hover).

A mixin of ``UNetWidget`` that builds its part of the section (``build_export_section``) and handles
its buttons (it uses ``self.viewer``, ``self.model``, ``self.image_combo``, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .notify import notify

FORMAT_CHOICES = {"bioimage.io package (.zip)": "bioimageio", "TorchScript (.pt)": "torchscript",
                  "ONNX (.onnx)": "onnx"}


class ExportSection:
    """build_export_section, save_model, load_model, export_masks, export_model, export_measurements,
    measure_prediction."""

    def build_export_section(self) -> list:
        """The export part of the Apply & export tab: Export all predictions, Save model / Load model /
        Export masks, Model format, Export model / Export measurements."""
        from magicgui.widgets import CheckBox, ComboBox, Container, PushButton

        self.export_all = CheckBox(text="Export all predictions")
        self.save_button = PushButton(text="Save model")
        self.load_button = PushButton(text="Load model")
        self.export_button = PushButton(text="Export masks")
        self.measure_button = PushButton(text="Export measurements",
                                         tooltip="one row per object of the prediction as it is now: area, "
                                                 "centroid, box, intensities, shape (CSV)")
        self.export_format = ComboBox(label="Model format", choices=list(FORMAT_CHOICES))
        self.export_model_button = PushButton(text="Export model",
                                              tooltip="for other tools: a bioimage.io package (deepImageJ, "
                                                      "ilastik, QuPath, bioimageio.core), TorchScript or ONNX")
        self.save_button.clicked.connect(lambda: self.save_model())
        self.load_button.clicked.connect(lambda: self.load_model())
        self.export_button.clicked.connect(lambda: self.export_masks())
        self.export_model_button.clicked.connect(lambda: self.export_model())
        self.measure_button.clicked.connect(lambda: self.export_measurements())
        return [
            self.export_all,
            Container(widgets=[self.save_button, self.load_button, self.export_button], layout="horizontal",
                      labels=False),
            self.export_format,
            Container(widgets=[self.export_model_button, self.measure_button], layout="horizontal", labels=False),
        ]

    def save_model(self, path=None):
        """Save the current model as a .pt file (a file dialog when no path is given)."""
        if self.model is None:
            notify("no model to save yet: press Train first", error=True)
            return None
        if path is not None and Path(path).suffix.lower() != ".pt":
            notify(f"napari-unet model files end in .pt; save it as {Path(path).with_suffix('.pt').name}",
                   error=True)
            return None
        path = path or ask_path("Save model", "model.pt", "napari-unet model (*.pt)", save=True,
                                near=self.image_combo.value)
        if not path:
            return None
        from ..engine.model import modelfile

        names, cfg = self._names(), self.model.config
        cfg.class_names = (names + cfg.class_names[len(names):])[: cfg.n_classes]  # the widget's names win
        try:
            self.check_not_an_input(("the model", path))
            out = modelfile.save_model(self.model, path)
        except UserInputError as exc:
            notify(str(exc), error=True)
            return None
        notify(f"model saved to {out}")
        return out

    def load_model(self, path=None):
        """Load a model file; its class names appear in the widget. Not while training (the round's end would
        replace it)."""
        if self.is_training:
            notify("training is running; press Stop before loading a model", error=True)
            return None
        path = path or ask_path("Load model", "", "napari-unet model (*.pt *.zip)", save=False,
                                near=self.image_combo.value)
        if not path:
            return None
        from ..engine.model import modelfile

        try:
            model = modelfile.load_model(path)
        except UserInputError as exc:
            notify(str(exc), error=True)
            return None
        self.class_names.value = ", ".join(model.config.class_names)
        self.use_3d.value = model.config.spatial_dims == 3
        model.summary.setdefault("source", Path(path).name)
        self._model_files.append(str(path))  # never written over by a save or an export
        self.adopt_model(model, f"loaded {Path(path).name}")
        steps = model.summary.get("total_steps", "?")
        self.status.value = f"loaded {Path(path).name}: {model.config.n_classes} class(es), {steps} steps"
        return model

    def check_not_an_input(self, *outputs) -> None:
        """Refuse (UserInputError) outputs, (what, path) pairs, that would replace the file of an
        open layer (image, labels, ...), a model file loaded in this session, or one another."""
        from ..engine import files

        sources = [getattr(getattr(lay, "source", None), "path", None) for lay in self.viewer.layers]
        sources += self._model_files
        files.check_outputs(sources, outputs)

    def export_masks(self, path=None):
        """Write the current prediction (or, if ticked, every prediction into a folder)."""
        from ..engine.disk import autosave, io

        preds = [lay for lay in self.viewer.layers if lay.name.endswith(" prediction")]
        image = self.image_combo.value
        if not self.export_all.value:
            preds = [lay for lay in preds if image is not None and lay.name == f"{image.name} prediction"]
        if not preds:
            notify("no prediction to export yet: press Train or Predict first", error=True)
            return []
        if path is None:
            path = ask_path("Export masks", f"{preds[0].name[:-11]}_masks.tif",
                            "Masks (*.tif *.png *.npy *.zarr)", save=True, folder=len(preds) > 1, near=image)
            if not path:
                return []
        try:
            if len(preds) == 1 and not Path(path).is_dir():
                self.check_not_an_input(("the mask", path))
                written = [io.write_mask(path, preds[0].data)]
            else:
                Path(path).mkdir(parents=True, exist_ok=True)
                outs = [Path(path) / f"{autosave.readable(lay.name[:-11], 150)}_masks.tif" for lay in preds]
                self.check_not_an_input(*[(f"the mask of {lay.name[:-11]}", out) for lay, out in zip(preds, outs)])
                written = [io.write_mask(out, lay.data) for lay, out in zip(preds, outs)]
        except UserInputError as exc:
            notify(str(exc), error=True)
            return []
        notify(f"wrote {len(written)} mask file(s)")
        return written


    def export_model(self, path=None, fmt: str | None = None):
        """Write the current model as ``fmt`` (the format box when None) for other tools; a file
        dialog when no path is given. A package's test image is a crop of the current image."""
        from ..engine.disk import export

        if self.model is None:
            notify("no model to export yet: press Train or Load model first", error=True)
            return None
        fmt = fmt or FORMAT_CHOICES[self.export_format.value]
        if path is None:
            path = ask_path("Export model", f"model{export.SUFFIXES[fmt]}", f"{fmt} (*{export.SUFFIXES[fmt]})",
                            save=True, near=self.image_combo.value)
            if not path:
                return None
        try:
            self.check_not_an_input(("the exported model", path))
            out = export.export(self.model, path, fmt, self._sample_plane())
        except UserInputError as exc:
            notify(str(exc), error=True)
            return None
        notify(f"model exported to {out} ({fmt})")
        return out

    def _sample_plane(self):
        """The plane on screen of the current image, channels first (None: no usable image)."""
        from ..engine import layout as ax
        from .layers import image_array, plane_on_screen

        image = self.image_combo.value
        if image is None or self.model is None:
            return None
        try:
            axes = self._axes(image)
            plane = plane_on_screen(image, axes, self.viewer.dims.point)
            pixels = np.asarray(ax.plane(image_array(image), axes, plane))
        except UserInputError:
            return None
        return pixels if pixels.shape[0] == self.model.config.in_channels else None

    def measure_prediction(self, image_layer):
        """Measure "<image> prediction" as it is now (after corrections too): its ``features`` get the
        columns (napari shows them on hover), the status the count per class; returns the table."""
        from ..engine import layout as ax
        from ..engine.prediction import measure
        from .layers import image_array

        layer = self.viewer.layers[f"{image_layer.name} prediction"]
        if not isinstance(layer.data, np.ndarray):
            raise UserInputError("this prediction is stored on disk (a large image); measure it with "
                                 "napari-unet predict --instances --measurements")
        axes = self._axes(image_layer)
        spatial = ax.spatial_of(self.model.config) if self.model is not None else "YX"
        names = self.model.config.class_names if self.model is not None else self._names()
        classes = self.instance_classes.get(image_layer.name)
        table = measure.measure_image(layer.data, image_array(image_layer), axes, spatial, classes, names)
        layer.features = {"index": table["label"], **{k: v for k, v in table.items() if k != "label"},
                          **self.doubt_column(image_layer, layer.data, table["label"])}
        self._last_count = self.status.value = count_line(table)
        return table

    def export_measurements(self, path=None):
        """Write the measurements of the current image's prediction (as edited) as CSV."""
        from ..engine.prediction import measure

        image = self._require_image()
        if image is None:
            return None
        if f"{image.name} prediction" not in self.viewer.layers:
            notify("no prediction to measure yet: press Train or Predict first", error=True)
            return None
        if path is None:
            path = ask_path("Export measurements", f"{image.name}_measurements.csv", "CSV (*.csv)", save=True,
                            near=image)
            if not path:
                return None
        try:
            self.check_not_an_input(("the measurements", path))
            table = self.measure_prediction(image)
            out = measure.write_csv(path, table)
        except UserInputError as exc:
            notify(str(exc), error=True)
            return None
        notify(f"{len(table['label'])} object(s) measured -> {out}")
        return Path(out)


def count_line(table) -> str:
    """'71 objects: 70 nucleus, 1 mitosis' from a measurements table."""
    names, counts = np.unique(np.asarray(table.get("class_name", []), str), return_counts=True)
    total = int(counts.sum())
    per_class = ", ".join(f"{c} {n}" for n, c in zip(names, counts))
    return f"{total} object{'s' if total != 1 else ''}" + (f": {per_class}" if total else "")


def ask_path(title: str, default: str, filters: str, save: bool, folder: bool = False, near=None):
    """A file dialog; it starts beside the image layer ``near`` when that came from a file."""
    from qtpy.QtWidgets import QFileDialog

    source = getattr(getattr(near, "source", None), "path", None)
    start = str(Path(source).parent / default) if source else default
    if folder:
        return QFileDialog.getExistingDirectory(None, title, str(Path(start).parent)) or None
    getter = QFileDialog.getSaveFileName if save else QFileDialog.getOpenFileName
    path, _ = getter(None, title, start, filters)
    return path or None
