"""The MONAI baseline used by vs_monai.py: BasicUNet in napari-unet's training loop,
and a stand-alone predict process built on MONAI's ``sliding_window_inference``.

Run as a script it is the baseline's whole-process prediction, the counterpart of
``napari-unet predict MODEL IMAGE --out MASK``:

    python benchmarks/_baseline.py predict BASELINE.pt IMAGE.tif MASK.tif

(read TIFF, percentile-normalise as napari-unet does, sliding window with roi 256,
overlap 0.25, gaussian blending, argmax, write TIFF).
"""

from __future__ import annotations

import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class BasicUNetNet(nn.Module):
    """MONAI BasicUNet (2D, default features 32-32-64-128-256-32) with napari-unet's net interface.

    Pads inputs to a multiple of 16 (its 4 poolings) and crops back, like napari-unet's UNet.
    """

    size_multiple = 16

    def __init__(self, in_channels: int = 1, n_outputs: int = 2):
        super().__init__()
        from monai.networks.nets import BasicUNet

        self.net = BasicUNet(spatial_dims=2, in_channels=in_channels, out_channels=n_outputs)

    def forward(self, x):
        h, w = x.shape[-2:]
        m = self.size_multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if pad_h < h and pad_w < w else "replicate")
        return self.net(x)[..., :h, :w]


def new_baseline_model():
    """A SegmentationModel whose net is BasicUNet: trains with napari_unet.train.fit unchanged."""
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.model.unet import SegmentationModel

    return SegmentationModel(UNetConfig(in_channels=1, n_classes=1), BasicUNetNet())


def sliding_window_labels(net, image: np.ndarray, value_range=None) -> np.ndarray:
    """(H, W) image -> (H, W) uint8 labels with MONAI sliding_window_inference (gaussian, roi 256)."""
    from monai.inferers import sliding_window_inference

    from napari_unet.engine import convert

    chw = image[None]
    if value_range is None:
        value_range = convert.percentile_range(chw)
    x = torch.from_numpy(convert.normalize(chw, value_range))[None]
    from napari_unet.engine.model.device import autocast

    net.eval()
    with torch.inference_mode(), autocast(torch.device("cpu")):  # the same precision as napari-unet
        probs = sliding_window_inference(x, roi_size=(256, 256), sw_batch_size=4, predictor=net,
                                         overlap=0.25, mode="gaussian")
    return probs[0].float().argmax(0).numpy().astype(np.uint8)


def _predict_main(model_path, image_path, out_path):
    import tifffile

    from napari_unet.engine.model.device import configure_cpu_threads

    configure_cpu_threads()
    net = BasicUNetNet()
    net.load_state_dict(torch.load(model_path, weights_only=True))
    image = tifffile.imread(image_path)
    tifffile.imwrite(out_path, sliding_window_labels(net, image).astype(np.uint16), compression="zlib")


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "predict":
        sys.exit(__doc__)
    _predict_main(*sys.argv[2:])
