import numpy as np
import pytest

from napari_unet.engine import layout as ax
from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.prediction import predict
from napari_unet.errors import UserInputError


@pytest.fixture
def model():
    import torch

    torch.manual_seed(0)
    m = SegmentationModel.new(UNetConfig(depth=3, width=8, n_classes=2))
    m.net.eval()
    return m


@pytest.mark.parametrize("shape", [(150, 170), (97, 301)])
def test_tiled_equals_untiled(model, shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    whole = predict.predict_probabilities(model, image, tile_size=1024)
    tiled = predict.predict_probabilities(model, image, tile_size=64, overlap=24, batch_size=3)
    assert tiled.shape == whole.shape == (3, *shape)
    assert np.abs(tiled - whole).max() < 0.05
    assert np.abs(tiled - whole).mean() < 5e-3


def test_probabilities_sum_to_one(model):
    p = predict.predict_probabilities(model, np.random.default_rng(1).random((70, 90)), tile_size=48, overlap=16)
    np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(7, 5), (1, 1), (3, 200)])
def test_tiny_images_keep_their_shape(model, shape):
    assert predict.predict_probabilities(model, np.ones(shape, np.uint16)).shape == (3, *shape)


def test_progress_events_then_result(model):
    events = list(predict.iter_predict(model, np.zeros((1, 100, 100)), tile_size=32, overlap=8))
    progress = [e for e in events if isinstance(e, predict.TileProgress)]
    assert progress[-1].done == progress[-1].total > 1
    assert isinstance(events[-1], predict.PredictionDone)


def test_channel_mismatch_is_refused(model):
    with pytest.raises(UserInputError, match="2 channels"):
        predict.predict_probabilities(model, np.zeros((20, 20, 2), np.uint8))


@pytest.mark.parametrize("channels", [3, 4])
def test_a_grayscale_model_reads_rgb_and_rgba_as_their_luminance(model, channels):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (40, 48)).astype(np.uint8)
    colour = np.stack([grey] * 3 + [np.full_like(grey, 255)] * (channels - 3), -1)  # grey saved as RGB(A)
    np.testing.assert_allclose(predict.predict_probabilities(model, colour), predict.predict_probabilities(model, grey),
                               atol=1e-5)


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (64, 64, 16), (10, 32, 8), (513, 512, 64)])
def test_tiles_cover_everything(length, tile, overlap):
    (th, _), _, origins = predict._tile_geometry((length, length), (tile, tile), (overlap, overlap), (8, 8))
    covered = np.zeros(length, bool)
    for y, _ in origins:
        covered[y:y + th] = True
        assert y % 8 == 0
    assert covered.all()


def test_blend_window_ramps_only_inside():
    w = predict.blend_window(32, 8, True, False)
    assert w[0] < 0.1 and w[-1] == 1 and np.all(np.diff(w[:8]) > 0)


def _labels(model, image, **kwargs):
    events = list(predict.iter_predict_labels(model, ax.plane(image, "YX", ()), **kwargs))  # (1, Y, X), lazy stays lazy
    assert isinstance(events[-1], predict.LabelsDone)
    return events[-1].labels


@pytest.mark.parametrize("shape", [(150, 170), (64, 200)])
def test_blockwise_labels_match_whole_image(model, shape):
    image = np.random.default_rng(2).random(shape).astype(np.float32)
    whole = predict.predict_probabilities(model, image, tile_size=64, overlap=16).argmax(0)
    blocks = _labels(model, image, block_size=48, tile_size=64, overlap=16)
    assert blocks.shape == shape and blocks.dtype == np.uint8
    assert (blocks == whole).mean() > 0.995


def test_blockwise_progress_counts_every_tile(model):
    events = list(predict.iter_predict_labels(model, np.zeros((1, 100, 90)), block_size=40, tile_size=32, overlap=8))
    progress = [e for e in events if isinstance(e, predict.TileProgress)]
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total


def test_blockwise_reads_zarr_and_writes_into_zarr(model, tmp_path):
    import zarr
    image = np.random.default_rng(3).integers(0, 4000, (130, 140)).astype(np.uint16)
    src = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=image.shape, chunks=(32, 32), dtype="u2")
    src[:] = image
    out = zarr.open_array(str(tmp_path / "out.zarr"), mode="w", shape=image.shape, chunks=(64, 64), dtype="u1")
    _labels(model, src, out=out, block_size=64, tile_size=64, overlap=16)
    expected = _labels(model, image, block_size=64, tile_size=64, overlap=16)
    np.testing.assert_array_equal(out[:], expected)
