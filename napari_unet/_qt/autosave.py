"""The widget's autosave and restore (``engine.disk.autosave``): the annotations when training
starts, annotations and model when it ends; when an image whose autosave exists is opened, the
widget says so (and when it was saved) and offers it (Restore autosave); nothing comes back unasked.

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self.workspace``, ``self.status``, ...).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .notify import notify


class AutosaveActions:
    """autosave, offer_autosave, restore_offered, keep_replaced_model."""


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

