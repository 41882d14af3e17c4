import subprocess
import sys

import torch

from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.training.optim import AdamW


def _nets():
    torch.manual_seed(0)
    a = SegmentationModel.new(UNetConfig(depth=2, width=8)).net
    b = SegmentationModel.new(UNetConfig(depth=2, width=8)).net
    b.load_state_dict(a.state_dict())
    return a, b


def test_matches_torch_adamw_step_for_step_with_changing_learning_rate():
    ours_net, ref_net = _nets()
    ours = AdamW(ours_net.parameters(), lr=1e-2, weight_decay=1e-4)
    ref = torch.optim.AdamW(ref_net.parameters(), lr=1e-2, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(1)
    for step in range(6):
        x = torch.randn(2, 1, 24, 24, generator=gen)
        y = torch.randint(0, 2, (2, 24, 24), generator=gen)
        for net, opt in ((ours_net, ours), (ref_net, ref)):
            opt.param_groups[0]["lr"] = 1e-2 * (step + 1) / 6
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()
    for p, q in zip(ours_net.parameters(), ref_net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    moved = sum(float((p - q).detach().abs().sum()) for p, q in zip(ours_net.parameters(), _nets()[0].parameters()))
    assert moved > 0.1  # the comparison above is not between two untouched nets


def test_parameters_without_gradient_are_left_alone_and_their_moments_do_not_age():
    ours_net, ref_net = _nets()
    ours, ref = AdamW(ours_net.parameters(), lr=0.1), torch.optim.AdamW(ref_net.parameters(), lr=0.1)
    for i in range(3):
        for net, opt in ((ours_net, ours), (ref_net, ref)):
            opt.zero_grad()
            last = list(net.parameters())[-1]
            loss = last.sum() if i == 0 else sum(p.square().sum() for p in net.parameters())
            loss.backward()
            opt.step()
    for p, q in zip(ours_net.parameters(), ref_net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_training_never_imports_dynamo():
    """torch.optim imports torch._dynamo on first use: 1.5-2.5 s before a fresh trainer's first preview."""
    code = ("import sys, numpy as np; from napari_unet.engine.training import train\n"
            "a = np.zeros((64, 64), np.uint8); a[:32], a[32:] = 1, 2\n"
            "im = np.random.default_rng(0).random((64, 64), dtype=np.float32)\n"
            "train.train([im], [a], train.TrainConfig(steps=2, time_budget=None, batch_size=2, patch_size=32,"
            " device='cpu'), unet_config=train.UNetConfig(depth=2, width=8))\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
