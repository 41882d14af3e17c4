"""What goes to and comes from disk besides the model file: images and masks (``io``), the
``autosave`` and the model for other tools (``export``). May use the model."""
