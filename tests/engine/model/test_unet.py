import pytest
import torch

from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel, UNet, count_parameters


@pytest.mark.parametrize("hw", [(1, 1), (7, 5), (16, 16), (33, 65), (100, 37), (129, 128)])
@pytest.mark.parametrize("channels,classes", [(1, 1), (3, 2), (5, 3)])
@pytest.mark.parametrize("head,extra", [("distance", 1), ("border", 1), ("none", 0)])
def test_output_shape_matches_input_for_odd_sizes(hw, channels, classes, head, extra):
    net = UNet(UNetConfig(in_channels=channels, n_classes=classes, depth=3, width=4, split_head=head)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, channels, *hw))
    assert out.shape == (2, classes + 1 + extra, *hw)  # the classes, then the split output


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
    assert model.net.head.out_channels == 3 + 1  # background, 2 classes, the split output
    assert model.device.type == "cpu"


@pytest.mark.parametrize("zyx", [(1, 1, 1), (3, 7, 5), (8, 16, 16), (5, 33, 20)])
@pytest.mark.parametrize("voxel_size", [(1, 1, 1), (3, 1, 1), (6, 0.5, 0.5)])
def test_3d_output_shape_matches_input_for_odd_sizes(zyx, voxel_size):
    cfg = UNetConfig(in_channels=2, n_classes=2, depth=3, width=4, spatial_dims=3, voxel_size=voxel_size)
    net = UNet(cfg).eval()
    with torch.no_grad():
        out = net(torch.rand(1, 2, *zyx))
    assert out.shape == (1, 3 + 1, *zyx)


def test_anisotropic_volumes_pool_z_only_once_xy_caught_up():
    from napari_unet.engine.model.unet import pool_schedule

    iso = UNetConfig(spatial_dims=3, depth=3)
    assert pool_schedule(iso)[0] == [(2, 2, 2)] * 3 and UNet(iso).size_multiples == (8, 8, 8)
    aniso = UNetConfig(spatial_dims=3, depth=3, voxel_size=(5.0, 1.0, 1.0))
    pools, kernels = pool_schedule(aniso)
    assert pools == [(1, 2, 2), (1, 2, 2), (2, 2, 2)]  # z spacing 5 -> 5, 5, 5 vs xy 1 -> 2 -> 4
    assert kernels[0] == (1, 3, 3) and kernels[-1] == (3, 3, 3)  # no z mixing while z is coarse
    assert UNet(aniso).size_multiples == (2, 8, 8)
    assert pool_schedule(UNetConfig(depth=2)) == ([(2, 2)] * 2, [(3, 3)] * 3)  # 2D: the classic U-Net


def test_model_files_from_before_3d_still_load():
    from napari_unet.engine.model import modelfile

    blob = modelfile.model_to_dict(SegmentationModel.new(UNetConfig(width=4, depth=2, split_head="none")))
    for key in ("spatial_dims", "voxel_size", "split_head"):
        blob["config"].pop(key)
    model = modelfile.model_from_dict(blob)
    assert model.config.spatial_dims == 2 and model.net(torch.rand(1, 1, 9, 9)).shape == (1, 2, 9, 9)
