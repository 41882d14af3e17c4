"""The only place that touches napari layers and Qt: the widget (``widget``: a header and four
sections as tabs, each a mixin: ``annotate_section``, ``train_section`` with ``model_choice``,
``review_section``, ``apply_section`` and ``export_section``; ``autosave``), layer access
(``layers``), the loss plot, notifications, and the npe2 contributions (``sample_data``,
``writer``), plus the viewer side of ``napari-unet demo``. The manifest (``napari.yaml``) points
here. The working state the widget shows is ``workspace.Workspace``'s; the work is the engine's."""
