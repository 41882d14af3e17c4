import pytest
import torch

from napari_unet.model import SegmentationModel, UNet, UNetConfig, count_parameters


@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (16, 16), (33, 65), (100, 37), (129, 128)])
@pytest.mark.parametrize("channels,classes", [(1, 1), (3, 2), (5, 3)])
def test_output_shape_matches_input_for_odd_sizes(hw, channels, classes):
    net = UNet(UNetConfig(in_channels=channels, n_classes=classes, depth=3, width=4)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, channels, *hw))
    assert out.shape == (2, classes + 1, *hw)


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_depth_sets_size_multiple_and_channel_growth(depth):
    cfg = UNetConfig(depth=depth, width=8)
    net = UNet(cfg)
    assert net.size_multiple == 2**depth
    last = net.downs[-1][1][0]
    assert last.out_channels == 8 * 2**depth


def test_wider_net_has_more_parameters():
    assert count_parameters(UNet(UNetConfig(width=16))) > count_parameters(UNet(UNetConfig(width=8)))


def test_torchscript_trace_round_trip(tmp_path):
    net = UNet(UNetConfig(width=4)).eval()
    x = torch.rand(1, 1, 40, 40)
    traced = torch.jit.trace(net, x)
    traced.save(tmp_path / "net.pt")
    loaded = torch.jit.load(tmp_path / "net.pt")
    torch.testing.assert_close(loaded(x), net(x))


def test_config_fills_missing_class_names():
    cfg = UNetConfig(n_classes=3, class_names=["nucleus"])
    assert cfg.class_names == ["nucleus", "class 2", "class 3"]
    assert cfg.n_outputs == 4
    assert UNetConfig(**cfg.to_dict()) == cfg


def test_segmentation_model_new_builds_net():
    model = SegmentationModel.new(UNetConfig(in_channels=2, n_classes=2, width=4))
    assert model.net.head.out_channels == 3
    assert model.device.type == "cpu"
