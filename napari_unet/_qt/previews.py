"""The live previews of a training round: what the trainer is asked to preview (the plane and the part of
the image on screen), and how each preview is shown (pasted into the "<image> prediction" layer, its
objects keeping their ids and colours). A CPU trainer waits while the view moves.

A mixin of ``UNetWidget`` (it uses ``self.viewer``, ``self._trainer``, ``self._training_layer``, ...).
"""

from __future__ import annotations

import numpy as np

from ..errors import UserInputError
from .layers import compact_ids, image_array, labels_shape, plane_on_screen, visible_window

PREVIEW_MAX_SIDE = 768  # live previews of larger images cover the visible part, at most this square
PREVIEW_MAX_SIDE_3D = 384  # 3D models preview a slab of 9 planes: a smaller window costs the same


class LivePreviews:
    """_preview_request, _on_view_changed, _retarget_preview, _on_preview, _add_preview_layer."""

    def _on_screen(self, image, axes):
        """(plane, window): the plane on screen and, for large images, the visible part to preview."""
        plane = plane_on_screen(image, axes, self.viewer.dims.point)
        max_side = PREVIEW_MAX_SIDE if self._spatial() == "YX" else PREVIEW_MAX_SIDE_3D
        return plane, visible_window(image, labels_shape(image, axes)[-2:], max_side)

    def _preview_request(self, image, axes, plane, window):
        """What the trainer previews: the plane (a slab around it for 3D models), tagged
        (plane, index of the plane in the slab)."""
        from ..engine.prediction.pipeline import preview_pixels
        from ..trainer.protocol import PreviewRequest

        pixels, k = preview_pixels(image_array(image), axes, plane, self._spatial())
        return PreviewRequest(pixels, window, (plane, k))

    def _on_view_changed(self, event=None) -> None:
        """The user pans, zooms, moves to another plane or paints: training on the CPU waits till they rest.

        The viewer redraws at every move, and a CPU trainer, even under SCHED_IDLE, made the
        worst 5 % of frames 6-9 ms later while making 0-3 steps in 12 s of it
        (benchmarks/latency.py); paused (frozen on Linux, elsewhere holding still after the
        step in progress), it costs nothing, and its time budget does not run. So the trainer can
        run at a normal (niced) priority the rest of the time and get its share beside other programs.
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
            request = self._preview_request(image, axes, plane, window)
        except UserInputError:
            return
        self._preview_target = (plane, window)
        self._trainer.set_preview(request)

    def _on_preview(self, event) -> None:
        labels, probabilities, classes, window, tag = (event.labels, event.probabilities, event.classes,
                                                       event.window, event.tag)
        plane = self._preview_plane if tag is None else tuple(tag[0])
        image = self._training_layer
        if image is None or image not in self.viewer.layers:  # deleted while training: skip previews
            return
        axes = self._axes(image)
        full_shape = labels_shape(image, axes)
        name = f"{image.name} prediction"
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        y0, y1, x0, x1 = window or (0, full_shape[-2], 0, full_shape[-1])
        region = plane + (slice(y0, y1), slice(x0, x1))
        if classes is not None:  # instances: each object keeps its id (and colour) from the last preview
            labels, classes = self._stable_ids(layer, full_shape, region, labels, classes)
            self._preview_objects = int(len(np.unique(labels)) - 1)  # (in the previewed part)
        labels = compact_ids(labels)
        if window is not None or len(full_shape) > 2:
            # a part of the image (visible window / one plane): paste it into the full-size layer
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

    @staticmethod
    def _stable_ids(layer, full_shape, region, labels, classes):
        """``keep_ids`` against what the layer shows in ``region`` (ids of new objects above all shown)."""
        from ..instances import keep_ids

        data = getattr(layer, "data", None)
        if not isinstance(data, np.ndarray) or data.shape != full_shape:
            return labels, classes
        shown = data[region]
        if shown.shape != labels.shape:
            return labels, classes
        return keep_ids(labels, shown, classes, first_new=int(data.max(initial=0)) + 1)

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
            self._show_prediction(image, np.zeros(labels_shape(image, axes), np.uint16), select=False)
            self._empty_preview_layer = self.viewer.layers[f"{image.name} prediction"]
