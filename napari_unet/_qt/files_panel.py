"""The widget's file actions: save / load model, export masks, autosave and restore.

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self.model``, ``self.status``, ...),
kept apart so each file stays readable. Autosave (see ``autosave``): the annotations
when training starts, annotations and model when it ends; restore: when an image
whose autosave exists is opened, the widget says so (and when it was saved) and offers it
(Restore autosave); nothing comes back unasked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .notify import notify


class FileActions:
    """save_model, load_model, export_masks, autosave, offer_autosave, restore_offered, keep_replaced_model."""

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
        """Load a model file; its class names appear in the widget."""
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
        self.adopt_model(model, f"loaded {Path(path).name}")
        steps = model.summary.get("total_steps", "?")
        self.status.value = f"loaded {Path(path).name}: {model.config.n_classes} class(es), {steps} steps"
        return model

    def check_not_an_input(self, *outputs) -> None:
        """Refuse (UserInputError) outputs, (what, path) pairs, that would replace the file of an
        open image or one another."""
        from napari.layers import Image

        from ..engine import files

        sources = [getattr(getattr(lay, "source", None), "path", None) for lay in self.viewer.layers
                   if isinstance(lay, Image)]
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


    # ---- autosave ------------------------------------------------------------------------------
    def autosave_identity(self, image_layer):
        """The layer's identity for autosave: its file, or (in memory) its name, shape and pixels."""
        from ..engine.disk import autosave
        from .layers import image_array

        source = getattr(getattr(image_layer, "source", None), "path", None)
        return autosave.identity_of(image_layer.name, source, None if source else image_array(image_layer))

    def autosave_folder(self, image_layer) -> Path:
        from ..engine.disk import autosave

        return autosave.folder_for(self.autosave_identity(image_layer))

    def autosave(self, pairs, model=None) -> list[Path]:
        """Save each pair's annotations (and the model, into the first pair's folder). Never raises."""
        from ..engine.disk import autosave

        written = []
        for i, (image, ann_layer) in enumerate(pairs):
            try:
                identity = self.autosave_identity(image)
                written += autosave.save(autosave.folder_for(identity), identity, np.asarray(ann_layer.data),
                                         model if i == 0 else None)
            except (UserInputError, OSError) as exc:
                notify(f"autosave failed ({exc}); use Save model and export your annotations", error=True)
        return written

    def keep_replaced_model(self, image_layer, new_dims: int) -> None:
        """Before a new 3D (2D) model replaces a 2D (3D) one, save the old one in the autosave folder."""
        from ..engine.model import modelfile

        dims = self.model.config.spatial_dims
        path = self.autosave_folder(image_layer) / f"model-{dims}d.pt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            modelfile.save_model(self.model, path)
            notify(f"training a new {new_dims}D U-Net; the {dims}D model is kept in {path}")
        except (UserInputError, OSError) as exc:
            notify(f"could not keep the {dims}D model ({exc}); use Save model", error=True)

    def offer_autosave(self, layer) -> bool:
        """If ``layer`` (an image) has an autosave, say so and offer it (the Restore autosave button);
        nothing comes back unasked. Returns whether one was offered."""
        from napari.layers import Image

        from ..engine.disk import autosave

        if not isinstance(layer, Image) or layer not in self.viewer.layers:
            return False
        try:
            identity = self.autosave_identity(layer)
        except UserInputError:
            return False
        folder = autosave.folder_for(identity)
        record = autosave.saved_record(folder)
        if not autosave.belongs_to(folder, identity) or not (folder / autosave.ANNOTATIONS).exists():
            return False
        what = "annotations" + (" and model" if autosave.model_path(folder, identity) else "")
        self._offered = (layer, folder, identity)
        self.restore_button.text = f"Restore autosave ({what}, {record.get('saved', '?')})"
        self.restore_button.visible = True
        notify(f"'{layer.name}' has {what} autosaved on {record.get('saved', '?')}: press Restore autosave to "
               "bring them back")
        return True

    def restore_offered(self) -> bool:
        """Bring back the offered autosave: its annotations (into "<image> annotations", replacing what
        is there: Undo corrections brings that back) and its model (the current one stays in the history)."""
        from ..engine.disk import autosave
        from ..engine.model import modelfile
        from .layers import labels_shape, style_annotations

        if self._offered is None:
            return False
        layer, folder, identity = self._offered
        self._offered, self.restore_button.visible = None, False
        if layer not in self.viewer.layers:
            return False
        ann = autosave.load_annotations(folder, identity, labels_shape(layer))
        if ann is None:
            notify(f"the autosave in {folder} could not be read or is for another shape; nothing restored", error=True)
            return False
        name = f"{layer.name} annotations"
        if name in self.viewer.layers:
            existing = self.viewer.layers[name]
            self.snapshot_for_undo(layer, existing, None)
            existing.data = ann
        else:
            new = self.viewer.add_labels(ann, name=name, scale=tuple(layer.scale[-ann.ndim:]),
                                         translate=tuple(layer.translate[-ann.ndim:]))
            style_annotations(new)
        restored = "annotations"
        path = autosave.model_path(folder, identity)
        if path is not None:
            try:
                model = modelfile.load_model(path)
                self.use_3d.value = model.config.spatial_dims == 3
                self.adopt_model(model, f"autosave of {layer.name}")
                restored += " and model"
            except UserInputError:
                pass
        notify(f"restored the {restored} autosaved in {folder}")
        return True

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
