"""napari-unet: human-in-the-loop U-Net segmentation for napari.

Nothing heavy is imported here: the engine lives in submodules
(``model``, ``data``, ``train``, ``predict``, ``instances``, ``io``) and torch is
only imported when one of those is used.
"""

__version__ = "0.1.0"
