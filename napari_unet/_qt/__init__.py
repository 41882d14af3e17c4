"""The only place that touches napari layers and Qt: the widget and its panels (``widget``,
``train_panel``, ``predict_panel``, ``files_panel``), layer access (``layers``), the loss plot,
notifications, and the npe2 contributions (``sample_data``, ``writer``), plus the viewer side of
``napari-unet demo``. The manifest (``napari.yaml``) points here."""
