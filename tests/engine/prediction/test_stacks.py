import numpy as np
import pytest

from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.engine.prediction import cluster, predict
from napari_unet.engine.prediction import stacks as chunked


@pytest.fixture
def model():
    import torch

    torch.manual_seed(0)
    m = SegmentationModel.new(UNetConfig(depth=2, width=8, n_classes=1))
    m.net.eval()
    return m


def _run(events):
    events = list(events)
    assert isinstance(events[-1], predict.LabelsDone)
    return events, events[-1].labels


def _plane_labels(model, plane):
    return predict.predict_probabilities(model, plane, tile_size=64).argmax(0)


def test_stack_is_predicted_plane_by_plane(model):
    stack = np.random.default_rng(0).random((3, 40, 50)).astype(np.float32)
    events, labels = _run(chunked.iter_predict_stack(model, stack, "ZYX", tile_size=64))
    assert labels.shape == (3, 40, 50)
    for z in range(3):
        np.testing.assert_array_equal(labels[z], _plane_labels(model, stack[z]))
    assert [e.done for e in events if isinstance(e, chunked.PlaneDone)] == [1, 2, 3]


def test_tzcyx_stack_into_zarr(model, tmp_path):
    import zarr
    m = SegmentationModel.new(UNetConfig(depth=2, width=8, n_classes=1, in_channels=2, channel_axis="first"))
    m.net.eval()
    stack = np.random.default_rng(1).random((2, 2, 2, 30, 40)).astype(np.float32)
    out = zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=(2, 2, 30, 40), chunks=(1, 1, 16, 16), dtype="u1")
    _run(chunked.iter_predict_stack(m, stack, "TZCYX", out, tile_size=64, block_size=16))
    expected = predict.predict_probabilities(m, stack[1, 0], tile_size=64).argmax(0)
    assert (out[1, 0] == expected).mean() > 0.99


def test_dask_labels_match_local_blocks(model):
    import dask.array as da
    image = np.random.default_rng(2).random((2, 70, 90)).astype(np.float32)
    lazy = cluster.labels_dask(model, da.from_array(image, chunks=(1, 35, 45)), "ZYX", block_size=32, overlap=16)
    result = lazy.compute(scheduler="synchronous")
    _, local = _run(chunked.iter_predict_stack(model, image, "ZYX", block_size=32, tile_size=64))
    assert result.shape == (2, 70, 90)
    assert (result == local).mean() > 0.99


def test_instances_are_numbered_per_plane(model):
    stack = np.random.default_rng(3).random((2, 40, 40)).astype(np.float32)
    _, labels = _run(chunked.iter_predict_stack(model, stack, "TYX", instances=True, min_size=1, tile_size=64))
    assert labels.dtype == np.uint32 and labels.shape == (2, 40, 40)


def test_instances_into_zarr_match_numpy_block_by_block(model, tmp_path, monkeypatch):
    import zarr
    from scipy import ndimage as ndi

    from napari_unet.instances import windows as _windows

    monkeypatch.setattr(_windows, "TILE_PIXELS", 16**2)  # many windows, overlapping regions
    rng = np.random.default_rng(4)  # blobs of smooth noise as the prediction: the same on every CPU
    blobs = [(ndi.gaussian_filter(rng.random((60, 70)), 3) > 0.5).astype(np.uint8) for _ in range(2)]
    planes = iter(blobs * 2)

    def predicted(model, view, target, **kwargs):  # each plane's semantic labels, in the order asked
        target[...] = next(planes)
        yield from ()

    monkeypatch.setattr(chunked.predict, "iter_predict_labels", predicted)
    stack = np.zeros((2, 60, 70), np.float32)
    _, expected = _run(chunked.iter_predict_stack(model, stack, "TYX", instances=True, min_size=1, tile_size=64))
    out = zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=(2, 60, 70), chunks=(1, 16, 16), dtype="u4")
    out[:] = 7  # written over: the plane is zeroed first
    _run(chunked.iter_predict_stack(model, stack, "TYX", out, instances=True, min_size=1, tile_size=64))
    assert expected.max() > 5
    np.testing.assert_array_equal(out[:], expected)


class _Recorded:
    """A zarr array that records the size of every read."""

    def __init__(self, array):
        self.array, self.shape, self.dtype, self.largest = array, array.shape, array.dtype, 0

    def __getitem__(self, key):
        part = self.array[key]
        self.largest = max(self.largest, np.size(part))
        return part

    def __setitem__(self, key, value):
        self.array[key] = value


def test_instances_into_zarr_never_read_a_whole_plane(model, tmp_path, monkeypatch):
    import zarr

    from napari_unet.engine.disk.io import read_image
    from napari_unet.instances import objects as instances
    from napari_unet.instances import windows as _windows
    from napari_unet.sample_data import sample_paths

    semantic = (read_image(sample_paths()["mask"]) > 0).astype(np.uint8)

    def predicted(model, view, target, **kwargs):  # the prediction: the sample's nuclei
        target[...] = semantic
        yield from ()

    monkeypatch.setattr(chunked.predict, "iter_predict_labels", predicted)
    monkeypatch.setattr(_windows, "TILE_PIXELS", 64**2)
    out = _Recorded(zarr.open_array(str(tmp_path / "o.zarr"), mode="w", shape=semantic.shape, chunks=(64, 64),
                                    dtype="u4"))
    _run(chunked.iter_predict_stack(model, semantic, "YX", out, instances=True))
    expected = instances.instances_from_semantic(semantic, 1).labels
    assert expected.max() > 50
    np.testing.assert_array_equal(out.array[:], expected)
    # windows (the largest cluster's is 216 x 179 px); the output's plane was once read for its shape
    assert 0 < out.largest < semantic.size / 2
