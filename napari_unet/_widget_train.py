"""The widget's training side: Train/Stop, the trainer's events, live previews.

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self.model``, ``self.use_3d``,
``self._trainer``, ...), kept apart so each file stays readable. Training runs in a
separate process (``_trainer_process``); a QTimer drains its events on the GUI thread.
"""

from __future__ import annotations

import numpy as np

from . import axes as ax
from . import data
from ._layer_data import image_array as _image_array
from ._layer_data import labels_shape as _labels_shape
from ._layer_data import compact_ids, plane_on_screen, preview_pixels, visible_window, voxel_size
from ._widget_files import notify as _notify
from .errors import UserInputError

PREVIEW_EVERY_S = 2.0
PREVIEW_MAX_SIDE = 768  # live previews of larger images cover the visible part, at most this square
PREVIEW_MAX_SIDE_3D = 384  # 3D models preview a slab of 9 planes: a smaller window costs the same
FIRST_PREVIEW_S = 0.5


class TrainActions:
    """train, stop, close_trainer and the handlers of trainer events."""

    pause_while_view_moves = True  # see _on_view_changed

    def _ensure_trainer(self):
        from ._trainer_process import TrainerProcess, take_prestarted

        if self._trainer is None or not self._trainer.is_alive():
            self._trainer = take_prestarted() or TrainerProcess()
        return self._trainer

    @property
    def is_training(self) -> bool:
        return self._training_layer is not None

    def _training_pairs(self):
        """[(image layer, annotation layer)], the current pair first; raises UserInputError."""
        image, ann = self.image_combo.value, self.annotation_combo.value
        if image is None:
            raise UserInputError("no image layer: open an image first")
        if ann is None:
            raise UserInputError("no annotation layer: press 'New annotations' and paint 1 = background, 2 = object")
        pairs = [(image, ann)]
        if self.all_images.value:
            from napari.layers import Image

            for layer in self.viewer.layers:
                other = f"{layer.name} annotations"
                if isinstance(layer, Image) and layer is not image and other in self.viewer.layers:
                    pairs.append((layer, self.viewer.layers[other]))
        return pairs

    def _training_data(self, pairs):
        """Annotated planes of every pair, their annotations, and the channel layout.

        Annotations are copied: painting during training cannot change what training reads.
        """
        planes, anns, layouts = [], [], set()
        spatial = self._spatial()
        for image, ann_layer in pairs:
            axes = self._axes(image)
            layout = ax.layout_of(axes)
            layouts.add(layout)
            ann = np.array(ann_layer.data, copy=True)
            if ax.is_single_plane(axes, spatial):
                arr = np.asarray(ax.plane(_image_array(image), axes, (), layout, spatial))
                spatial_shape = data.to_channels_first(arr, layout, len(spatial)).shape[1:]
                anns.append(data.check_annotations(ann, spatial_shape))
                planes.append(arr)
            else:
                p, a = ax.annotated_planes(_image_array(image), ann, axes, layout, spatial)
                planes += p
                anns += [data.check_annotations(x, x.shape) for x in a]
        if len(layouts) > 1:
            raise UserInputError("the images have different channel layouts; untick 'Train on all annotated images'")
        if not planes:
            raise UserInputError("no annotations found on any plane; paint background (1) and objects (2) first")
        data.check_training_set(anns, self.model.config.n_classes if self._continued_model() else None)
        return planes, anns, layouts.pop()

    def _continued_model(self):
        """The model Train continues from: the current one, unless it is 2D and 3D is ticked (or vice versa)."""
        if self.model is None or (self.model.config.spatial_dims == 3) == bool(self.use_3d.value):
            return self.model
        return None

    def _on_screen(self, image, axes):
        """(plane, window): the plane on screen and, for large images, the visible part to preview."""
        plane = plane_on_screen(image, axes, self.viewer.dims.point)
        max_side = PREVIEW_MAX_SIDE if self._spatial() == "YX" else PREVIEW_MAX_SIDE_3D
        return plane, visible_window(image, _labels_shape(image, axes)[-2:], max_side)

    def _preview_request(self, image, axes, plane, window):
        """(pixels, window, tag) for the trainer: the plane (a slab around it for 3D models);
        tag = (plane, index of the plane in the slab)."""
        pixels, k = preview_pixels(_image_array(image), axes, plane, ax.layout_of(axes), self._spatial())
        return pixels, window, (plane, k)

    def train(self):
        """Start training in the background on a snapshot of the chosen layers."""
        if self.is_training:
            _notify("training is already running; press Stop first")
            return False
        try:
            pairs = self._training_pairs()
            planes, anns, layout = self._training_data(pairs)
            image = pairs[0][0]
            axes = self._axes(image)
            preview, window, tag = self._preview_request(image, axes, *self._on_screen(image, axes))
            self._preview_plane = tag[0]
        except UserInputError as exc:
            _notify(str(exc), error=True)
            return False
        from . import io

        self.autosave(pairs)
        if self.model is not None and self._continued_model() is None:
            self.keep_replaced_model(image, len(self._spatial()))
        init = io.model_to_dict(self.model) if self._continued_model() is not None else None
        unet = {"class_names": self._names(), "channel_axis": layout, "spatial_dims": len(self._spatial()),
                "voxel_size": voxel_size(image, axes)}
        cfg = {"time_budget": float(self.time_budget.value), "steps": None, "preview_every": PREVIEW_EVERY_S,
               "first_preview": FIRST_PREVIEW_S}
        self._ensure_trainer().train(planes, anns, cfg, init, unet, preview, self.output_mode.value == "instances",
                                     window, tag)
        self._training_layer = image
        self._add_preview_layer(image, axes)
        self._preview_target = (tag[0], window)
        self._training_pairs_snapshot = pairs
        self.losses = []
        self.progress.value = 0
        self.status.value = "starting..."
        self.train_button.enabled, self.stop_button.enabled = False, True
        self._timer.start()
        return True

    def stop(self):
        """Stop training at the next step; the model trained so far is kept."""
        if self._trainer is not None and self.is_training:
            self._trainer.stop()
            self.status.value = "stopping..."

    def _poll(self) -> None:
        """Drain trainer events (GUI thread, every 50 ms while training)."""
        if self._trainer is None:
            return
        for event in self._trainer.poll():
            getattr(self, f"_on_{event[0]}")(*event[1:])
        if self.is_training and self._trainer.ended():  # not before its last events are handled
            self._end_training("the training process stopped unexpectedly; your layers and the last "
                               "model are kept. Press Train to try again")

    def _on_ready(self, _):
        pass

    def _on_notice(self, message: str):
        _notify(message)

    def _on_started(self, device: str, annotated: int):
        self.device_name = device
        self.status.value = f"training on {device}, {annotated} annotated pixels"

    def _on_step(self, step, loss, elapsed, lr, px_per_s):
        self.losses.append(loss)
        budget = float(self.time_budget.value)
        self.progress.value = int(1000 * min(elapsed / budget, 1.0))
        rate = step / max(elapsed, 1e-6)
        self.status.value = (f"{self.device_name} | step {step} | loss {loss:.3f} | "
                             f"{elapsed:.0f}/{budget:.0f} s | {rate:.1f} steps/s")
        if step % 5 == 0:
            self.loss_plot.set_values(self.losses)

    def _on_view_changed(self, event=None) -> None:
        """The user pans, zooms or moves to another plane: training on the CPU waits till they rest.

        The viewer redraws at every move, and a CPU trainer, even under SCHED_IDLE, made the
        worst 5 % of frames 6-9 ms later while making 0-3 steps in 12 s of it
        (benchmarks/latency.py); paused (frozen on Linux, elsewhere holding still after the
        step in progress), it costs nothing, and its time budget does not run.
        """
        if self.is_training:
            if self.pause_while_view_moves and self.device_name.startswith("CPU"):
                self._trainer.pause()
            self._retarget.start()  # debounced: one update after the user stops moving for 200 ms

    def _retarget_preview(self) -> None:
        """Send the trainer the plane and window now on screen, if they changed; resume it."""
        if self._trainer is not None:
            self._trainer.resume()
        image = self._training_layer
        if image is None or image not in self.viewer.layers or self._trainer is None:
            return
        try:
            axes = self._axes(image)
            plane, window = self._on_screen(image, axes)
            if (plane, window) == self._preview_target:
                return
            pixels, window, tag = self._preview_request(image, axes, plane, window)
        except UserInputError:
            return
        self._preview_target = (plane, window)
        self._trainer.set_preview(pixels, window, tag)

    def _on_preview(self, step, elapsed, labels, probabilities, classes, window, tag=None):
        plane = self._preview_plane if tag is None else tuple(tag[0])
        image = self._training_layer
        if image is None or image not in self.viewer.layers:  # deleted while training: skip previews
            return
        axes = self._axes(image)
        full_shape = _labels_shape(image, axes)
        name = f"{image.name} prediction"
        labels = compact_ids(labels)
        if window is not None or len(full_shape) > 2:
            # a part of the image (visible window / one plane): paste it into the full-size layer
            y0, y1, x0, x1 = window or (0, full_shape[-2], 0, full_shape[-1])
            region = plane + (slice(y0, y1), slice(x0, x1))
            layer = self.viewer.layers[name] if name in self.viewer.layers else None
            if self._paste_in_place(layer, image.name, full_shape, region, labels):
                labels = None
            else:
                full = layer.data if layer is not None and layer.data.shape == full_shape else None
                if full is None:
                    full = np.zeros(full_shape, labels.dtype)
                else:  # a dtype that holds both the ids shown elsewhere and the new ones
                    full = np.array(full, np.promote_types(full.dtype, labels.dtype))
                full[region] = labels
                labels, probabilities = full, None
        if labels is not None:
            self._show_prediction(image, labels, probabilities, classes, select=False)
        elif classes is not None:
            self.instance_classes[image.name] = classes
        self._empty_preview_layer = None
        self.signals.preview_updated.emit()

    def _paste_in_place(self, layer, image_name, full_shape, region, labels) -> bool:
        """Write a preview of a part into the full-size layer's own array; False if it cannot be.

        Replacing the data instead copies the whole layer (every plane of a stack) per preview:
        2048^2, 15-24 ms of GUI thread and a 70-93 ms redraw, against 9-10 ms and 67-73 ms in place
        (benchmarks/preview_cost.py).
        """
        data = getattr(layer, "data", None)
        if not (isinstance(data, np.ndarray) and data.shape == full_shape and data.flags.writeable
                and np.can_cast(labels.dtype, data.dtype, "safe")):
            return False
        data[region] = labels
        layer.refresh()
        shown = self.last_prediction.get(image_name)  # what "Use corrections" compares the layer with
        if shown is not None and shown.shape == full_shape and np.can_cast(labels.dtype, shown.dtype, "safe"):
            shown[region] = labels
        else:
            self.last_prediction[image_name] = np.array(data, copy=True)
        return True

    def _add_preview_layer(self, image, axes) -> None:
        """Make the empty "<image> prediction" layer that previews are shown in (parts pasted into).

        Done at Train, after the job is sent: creating a Labels layer takes 0.25-0.35 s here
        (software OpenGL; 520 x 696 and 2048^2 alike), a stall better paid at the click than
        under the user's brush when the first preview lands. (The first preview does not come
        sooner for it: the trainer, under SCHED_IDLE, yields the CPU to the layer's creation.)
        If training fails before any preview, the empty layer is removed again.
        """
        self._empty_preview_layer = None
        if f"{image.name} prediction" not in self.viewer.layers:
            # uint16: what previews of instances come as (compact_ids), so they are written in place
            self._show_prediction(image, np.zeros(_labels_shape(image, axes), np.uint16), select=False)
            self._empty_preview_layer = self.viewer.layers[f"{image.name} prediction"]

    def _on_finished(self, model_blob):
        from . import io

        self.model = io.model_from_dict(model_blob)
        self.use_3d.value = self.model.config.spatial_dims == 3
        steps = self.model.summary.get("total_steps", 0)
        self.autosave(self._training_pairs_snapshot, model=self.model)
        self._end_training(None, f"model ready: {steps} steps in total on {self.device_name}")

    def _on_error(self, message, model_blob):
        if model_blob is not None:
            from . import io

            self.model = io.model_from_dict(model_blob)
        self._end_training(message)

    def _end_training(self, error: str | None, status: str = "") -> None:
        self._timer.stop()
        if self._trainer is not None:
            self._trainer.resume()
        self._training_layer = None
        self.train_button.enabled, self.stop_button.enabled = True, False
        self.loss_plot.set_values(self.losses)
        empty, self._empty_preview_layer = self._empty_preview_layer, None
        if error and empty is not None and empty in self.viewer.layers:
            self.viewer.layers.remove(empty)  # made at Train, never shown a preview
        if error:
            self.status.value = "training stopped with an error"
            _notify(error, error=True)
        else:
            self.progress.value = 1000
            self.status.value = status
        self.signals.training_finished.emit()

    def close_trainer(self) -> None:
        self._timer.stop()
        if self._trainer is not None:
            self._trainer.close()
