"""The command line, ``napari-unet train | predict | demo``: see ``main``."""

from .main import main

__all__ = ["main"]
