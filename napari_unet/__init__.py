"""napari-unet: human-in-the-loop U-Net segmentation for napari.

Nothing heavy is imported here: the engine lives in its rooms (``engine.model``,
``engine.training``, ``engine.prediction``, ``engine.disk``), the instance step in ``instances``,
the user's working state in ``workspace``, and torch is only imported when one of those is used.
"""

__version__ = "0.1.0"
