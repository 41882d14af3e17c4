"""The engine: numpy + torch (and scipy, scikit-image, tifffile, zarr), never napari or Qt.

Four rooms above a floor of shared rules; imports run downward only (``tests/test_imports.py``):

- ``training/``: ``train.fit`` (a generator of ``events``), the training set (``dataset``), patch
  ``sampling``, ``augment``, ``losses``, ``optim``, ``validation`` (checked regions), ``painted``
  whole objects, simulated ``scribbles``, and ``TrainConfig`` (``config``). May use prediction and
  the model.
- ``prediction/``: tiled prediction (``predict``), ``stacks`` and ``cluster`` (n-D and larger than
  memory), ``pipeline`` (what the CLI and the widget share), ``uncertainty`` (regions to check),
  ``measure`` (per-object measurements), ``metrics``. May use the model.
- ``model/``: the U-Net (``unet``), its ``config``, the model file (``modelfile``), the
  ``bundled`` models and the ``device``.
- ``disk/``: images and masks (``io``), ``autosave``, ``export`` (bioimage.io, TorchScript, ONNX).
  May use the model.
- the floor: ``layout`` (the one rule for axes and channels), ``convert`` (pixels to
  normalised channels-first arrays), ``convention`` (the label convention), ``crops`` and
  ``files`` (safe writes). They import no room.

Nothing is imported here: torch loads only with the modules that need it.
"""
