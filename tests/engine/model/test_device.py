"""Device choice and precision: bf16 on AMX CPUs (switchable), fp32 elsewhere."""

import numpy as np
import pytest
import torch

from napari_unet.engine.model import device
from napari_unet.engine.prediction import predict
from napari_unet.engine.training import train
from napari_unet.errors import UserInputError


@pytest.mark.parametrize("flag,dtype", [("0", torch.float32), ("1", torch.bfloat16)])
def test_cpu_precision_follows_the_switch(monkeypatch, flag, dtype):
    monkeypatch.setenv("NAPARI_UNET_CPU_BF16", flag)
    conv = torch.nn.Conv2d(1, 2, 3)
    with device.autocast(torch.device("cpu")):
        assert conv(torch.rand(1, 1, 8, 8)).dtype == dtype
    assert ("bf16" in device.describe(torch.device("cpu"))) == (flag == "1")


@pytest.mark.heavy_compute
@pytest.mark.parametrize("flag", ["0", "1"])
def test_both_cpu_precisions_train_and_agree(monkeypatch, blobs, flag):
    """fp32 and bf16 learn the same blobs; their predictions of one model agree closely."""
    image, mask, ann = blobs
    monkeypatch.setenv("NAPARI_UNET_CPU_BF16", flag)
    config = train.TrainConfig(steps=40, time_budget=None, batch_size=4, patch_size=32, device="cpu")
    model = train.train([image], [ann], config)
    probs = predict.predict_probabilities(model, image)
    fg = probs.argmax(0) > 0
    assert 2 * np.sum(fg & (mask > 0)) / (fg.sum() + (mask > 0).sum()) > 0.9
    monkeypatch.setenv("NAPARI_UNET_CPU_BF16", "0" if flag == "1" else "1")
    other = predict.predict_probabilities(model, image)
    assert np.mean(other.argmax(0) == probs.argmax(0)) > 0.99 and np.abs(other - probs).mean() < 0.02


def test_unavailable_devices_say_what_to_use():
    if not torch.cuda.is_available():
        with pytest.raises(UserInputError, match="--device cpu"):
            device.pick_device("cuda")
    with pytest.raises(UserInputError, match="unknown device"):
        device.pick_device("tpu")


def test_threads_leave_the_cores_other_programs_keep_busy(monkeypatch):
    import torch

    from napari_unet.engine.model import device

    monkeypatch.setattr(device.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        assert device.configure_cpu_threads(busy_cores=0) == 4
        assert device.configure_cpu_threads(busy_cores=3) == 1  # a starved thread stalls the others
        assert device.configure_cpu_threads(busy_cores=9) == 1
        monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's cap wins
        assert device.configure_cpu_threads(busy_cores=0) == 2
        assert device.configure_cpu_threads(requested=3) == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
