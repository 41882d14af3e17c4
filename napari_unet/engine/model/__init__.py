"""The network and its file: the U-Net (``unet``), its ``config``, the model file (``modelfile``),
the ``bundled`` models and the ``device`` it runs on. Uses only the engine's floor."""
