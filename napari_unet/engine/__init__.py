"""The engine: numpy + torch (and scipy, scikit-image, tifffile, zarr), never napari or Qt.

``config`` (UNetConfig, TrainConfig), ``model`` (the U-Net), ``data`` (the label convention,
normalisation, patch sampling), ``layout`` (the one rule for axes and channels), ``augment``,
``losses``, ``optim``, ``device``, ``train`` (``fit``: a generator of ``events``), ``predict``
(tiles and blocks), ``stacks`` and ``cluster`` (n-D and larger-than-memory prediction),
``pipeline`` (what the CLI and the widget share), ``io`` (model files, masks, images),
``autosave``, ``metrics``, ``scribbles``. Nothing is imported here: torch loads only with
the modules that need it.
"""
