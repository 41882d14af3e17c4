"""3D U-Net option: training on 3D patches of volumes, tiled 3D prediction, stacks of volumes, CLI."""

import numpy as np
import pytest

from napari_unet.cli import main as cli
from napari_unet.engine import layout as ax
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.prediction import cluster, predict
from napari_unet.engine.prediction import stacks as chunked
from napari_unet.engine.training import train
from napari_unet.errors import UserInputError
from tests.conftest import make_spheres, volume_scribbles

SMALL_3D = dict(depth=2, width=8, spatial_dims=3, voxel_size=(2.0, 1.0, 1.0))


@pytest.fixture(scope="module")
def trained():
    """A small 3D model trained on strokes on 2 of 12 planes of an anisotropic volume."""
    volume, mask = make_spheres()
    ann = volume_scribbles(mask, planes=(4, 8))
    config = train.TrainConfig(steps=60, time_budget=None, patch_size=32, seed=0)
    model = train.train([volume], [ann], config, unet_config=UNetConfig(**SMALL_3D))
    return model, volume, mask


def _dice(pred, truth):
    return 2 * np.sum(pred & truth) / max(pred.sum() + truth.sum(), 1)


@pytest.mark.heavy_compute
def test_3d_model_learns_whole_volume_from_two_annotated_planes(trained):
    model, volume, mask = trained
    rounds = model.summary["rounds"][-1]
    assert rounds["patch_depth"] == 12 and rounds["batch_size"] == 2  # 32 px / z step 2 = 16, capped at the volume
    probs = predict.predict_probabilities(model, volume)
    assert probs.shape == (2, *volume.shape)
    assert _dice(probs.argmax(0) > 0, mask > 0) > 0.85  # planes never painted included


@pytest.mark.heavy_compute
def test_3d_tiles_match_one_pass(trained):
    model = trained[0]
    volume, _ = make_spheres((40, 48, 48), n=12, seed=3)
    whole = predict.predict_probabilities(model, volume, tile_size=2048)
    tiled = predict.predict_probabilities(model, volume, tile_size=64, overlap=8)
    tiles, overlaps = predict.tile_plan(model, 64, 8)
    assert len(predict._tile_geometry(volume.shape, tiles, overlaps, model.net.size_multiples)[2]) >= 8
    # slabs of 4 planes + 8 of overlap see less z context than one pass: small differences
    assert np.abs(tiled - whole).mean() < 0.02
    assert np.mean(tiled.argmax(0) == whole.argmax(0)) > 0.999


@pytest.mark.heavy_compute
def test_3d_labels_block_by_block_equal_probabilities(trained):
    model, volume, _ = trained
    events = list(predict.iter_predict_labels(model, volume[None], block_size=16, overlap=8))
    labels = events[-1].labels
    assert labels.shape == volume.shape
    assert np.mean(labels == predict.predict_probabilities(model, volume).argmax(0)) > 0.99


@pytest.mark.heavy_compute
def test_stack_of_volumes_is_predicted_volume_by_volume(trained, tmp_path):
    import zarr

    model, volume, _ = trained
    tzyx = np.stack([volume, volume[:, ::-1]])
    out = zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=tzyx.shape, chunks=(1, 12, 24, 24), dtype="u1")
    events = list(chunked.iter_predict_stack(model, tzyx, "TZYX", out))
    assert [e.done for e in events if isinstance(e, chunked.PlaneDone)] == [1, 2]  # one event per volume
    alone = list(predict.iter_predict_labels(model, volume[None]))[-1].labels
    np.testing.assert_array_equal(out[0], alone)
    lazy = cluster.labels_dask(model, tzyx, "TZYX", block_size=32).compute(scheduler="synchronous")
    assert lazy.shape == tzyx.shape and np.mean(lazy == out[:]) > 0.99


def test_volumes_with_channels_and_axes_orders():
    vol = np.zeros((5, 6, 7, 2))  # Z, Y, X, C
    v = ax.plane(vol, "ZYXC", (), "ZYX")
    assert v.shape == (2, 5, 6, 7)  # channels first
    assert ax.plane(np.zeros((3, 5, 6, 7)), "TZYX", (1,), "ZYX").shape == (1, 5, 6, 7)
    assert ax.plane_indices((3, 5, 6, 7), "TZYX", "ZYX") == [(0,), (1,), (2,)]
    with pytest.raises(UserInputError, match="3D model needs a Z axis"):
        ax.plane_indices((3, 6, 7), "TYX", "ZYX")


@pytest.mark.heavy_compute
def test_3d_model_refuses_a_plane_and_2d_fine_tuning_refuses_volumes(trained):
    model, volume, mask = trained
    with pytest.raises(UserInputError, match="3D"):
        predict.predict_probabilities(model, volume[0])
    flat = SegmentationModel.new(UNetConfig(depth=2, width=4))
    with pytest.raises(UserInputError, match="2D"):
        train.train([volume], [volume_scribbles(mask, (4,))], train.TrainConfig(steps=1), model=flat)


def _run(*args):
    return cli([str(a) for a in args])


@pytest.mark.heavy_compute
def test_cli_trains_a_3d_model_and_predicts_a_volume(tmp_path, capsys):
    from napari_unet.engine.disk import io
    from napari_unet.engine.model import modelfile

    volume, mask = make_spheres(seed=1)
    img = io.write_mask(tmp_path / "vol.tif", volume)
    lab = io.write_mask(tmp_path / "vol_lab.tif", volume_scribbles(mask, (3, 9)))
    model = tmp_path / "m3d.pt"
    assert _run("train", img, "--labels", lab, "--3d", "--voxel-size", 2, 1, 1, "--out", model, "--steps", 3,
                "--depth", 2, "--width", 4, "--patch-size", 32) == 0
    loaded = modelfile.load_model(model)
    assert loaded.config.spatial_dims == 3 and loaded.config.voxel_size == (2.0, 1.0, 1.0)
    assert _run("predict", model, img, "--out", tmp_path / "o.tif", "--instances") == 0
    assert io.read_image(tmp_path / "o.tif").shape == volume.shape
    plane = io.write_mask(tmp_path / "plane.tif", volume[0])
    capsys.readouterr()
    assert _run("predict", model, plane, "--out", tmp_path / "p.tif") == 2
    assert "needs a Z axis" in capsys.readouterr().err
    assert _run("train", img, "--labels", lab, "--voxel-size", 2, 1, 1, "--out", model, "--steps", 1) == 2
    assert "add --3d" in capsys.readouterr().err


def test_3d_instances_split_touching_objects_in_space_not_in_voxels():
    from napari_unet.instances import instances_from_semantic

    zz, yy, xx = np.mgrid[:16, :40, :40]
    # two nuclei of radius 12 stacked in z, touching; z step 4: 3 planes of radius in voxels
    balls = [((zz - cz) * 4) ** 2 + (yy - 20) ** 2 + (xx - 20) ** 2 <= 144 for cz in (4, 10)]
    semantic = (balls[0] | balls[1]).astype(np.uint8)
    found = instances_from_semantic(semantic, 1, min_size=10, spacing=(4.0, 1.0, 1.0))
    assert found.labels.max() == 2
    assert len(np.unique(found.labels[balls[0] & ~balls[1]])) == 1  # each nucleus one object
    assert instances_from_semantic(semantic, 1, min_size=10).labels.max() == 1  # in voxels: merged
