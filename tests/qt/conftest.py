"""Fixtures of the GUI tests: a real viewer with the U-Net widget docked."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def small_model():
    """A tiny nuclei model (depth 2, width 4, 10 steps on a crop of the sample): for tests that need a
    model to predict with or to keep, not a trained one (training in the widget takes seconds more)."""
    from napari_unet.engine.disk import io
    from napari_unet.engine.model.config import UNetConfig
    from napari_unet.engine.training import train
    from napari_unet.sample_data import sample_paths

    image = io.read_image(sample_paths()["image"])[:160, :200]
    dense = np.where(io.read_image(sample_paths()["mask"])[:160, :200] > 0, 2, 1).astype(np.uint8)
    config = train.TrainConfig(steps=10, time_budget=None, batch_size=2, patch_size=32, threads=1)
    return train.train([image], [dense], config, unet_config=UNetConfig(depth=2, width=4, class_names=["nucleus"]))


@pytest.fixture(autouse=True)
def _the_next_tests_trainer_starts_now(request):
    """After each GUI test, a trainer is started for the next widget (``process.prestart``, as the
    sample with scribbles does for a user): its Python and torch import overlap this test's teardown and
    the next one's setup instead of delaying its first Train. A test marked ``own_trainer_start`` (it
    checks who starts the trainer) begins with none waiting."""
    from napari_unet.trainer import process

    waiting = process.take_prestarted() if request.node.get_closest_marker("own_trainer_start") else None
    if waiting is not None:
        waiting.close()
    yield
    process.prestart()


@pytest.fixture
def viewer_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet", "U-Net")
    yield viewer, widget
    widget.close_trainer()


def train_until_first_preview(w, qtbot, timeout_ms: int = 120_000) -> None:
    """Train in the widget until its first preview, then Stop and wait for the model: the shortest round
    the widget makes, for tests that need a round trained by the widget, not a good model. (The time
    budget is set long, so that only the Stop ends the round, however slow or loaded the CPU.)"""
    w.time_budget.value = 3600
    with qtbot.waitSignal(w.signals.preview_updated, timeout=timeout_ms):
        assert w.train()
    with qtbot.waitSignal(w.signals.training_finished, timeout=timeout_ms):
        w.stop()
