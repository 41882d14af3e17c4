"""The widget's exports: the model for other tools (bioimage.io, TorchScript, ONNX) and the
objects' measurements (CSV, and the prediction layer's ``features``, shown on hover).

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self.model``, ``self.image_combo``, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .notify import notify

FORMAT_CHOICES = {"bioimage.io package (.zip)": "bioimageio", "TorchScript (.pt)": "torchscript",
                  "ONNX (.onnx)": "onnx"}


class ExportActions:
    """export_model, export_measurements, measure_prediction."""

    def export_model(self, path=None, fmt: str | None = None):
        """Write the current model as ``fmt`` (the format box when None) for other tools; a file
        dialog when no path is given. A package's test image is a crop of the current image."""
        from ..engine.disk import export

        if self.model is None:
            notify("no model to export yet: press Train or Load model first", error=True)
            return None
        fmt = fmt or FORMAT_CHOICES[self.export_format.value]
        if path is None:
            from .files_panel import ask_path

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
            from .files_panel import ask_path

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
