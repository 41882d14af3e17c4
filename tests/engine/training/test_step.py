import numpy as np
import torch

from napari_unet.engine.training import sampling
from napari_unet.engine.training.step import recalibrate_batchnorm


def test_batchnorm_recalibration_covers_the_planes_about_twice_in_crops_no_larger_than_they_are():
    """A small plane is read in one batch of crops its own size, a large one in at most four batches of 256^2;
    the running statistics are those of the images, and the network is left in the mode it was in."""
    seen = []

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm2d(1)

        def forward(self, x):
            seen.append(tuple(x.shape))
            return self.bn(x)

    for shape, batches in (((1, 64, 64), [(4, 1, 64, 64)]), ((1, 256, 384), [(4, 1, 256, 256)]),
                           ((1, 1024, 1024), [(4, 1, 256, 256)] * 4)):
        seen.clear()
        image = np.full(shape, 3.0, np.float32)
        sampler = sampling.PatchSampler([image], [np.ones(shape[1:], np.int16)], 32, np.random.default_rng(0))
        net = Net().eval()
        recalibrate_batchnorm(net, sampler, torch.device("cpu"))
        assert seen == batches
        assert float(net.bn.running_mean[0]) == 3.0 and not net.training
