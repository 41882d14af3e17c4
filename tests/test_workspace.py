"""The workspace: which model is current, the history and the undo of corrections, without Qt."""

import numpy as np
import pytest

from napari_unet.engine.model.config import UNetConfig
from napari_unet.engine.model.unet import SegmentationModel
from napari_unet.errors import UserInputError
from napari_unet.workspace import MAX_HISTORY, Workspace


def _model(steps=0, dims=2):
    model = SegmentationModel.new(UNetConfig(depth=1, width=2, spatial_dims=dims))
    model.summary["total_steps"] = steps
    return model


def test_adopted_models_are_current_and_remembered_in_order():
    ws = Workspace()
    assert ws.model is None and ws.remember("nothing") is None and not ws.history
    a, b = _model(10), _model(25)
    ws.adopt(a, "round 1")
    entry = ws.adopt(b, "round 2")
    assert ws.model is b and [e.model for e in ws.history] == [a, b]
    assert entry.label.startswith("2. round 2, 25 steps") and entry.note == "round 2"


def test_going_back_and_leaving_keep_the_history():
    ws = Workspace()
    a, b = _model(), _model()
    ws.adopt(a, "one")
    ws.adopt(b, "two")
    assert ws.go_to(a).note == "one" and ws.model is a
    assert ws.go_to(_model()) is None and ws.model is a  # not in the history: nothing changes
    ws.leave()
    assert ws.model is None and len(ws.history) == 2


def test_the_history_keeps_the_newest_and_its_numbers_keep_counting():
    ws = Workspace()
    for i in range(MAX_HISTORY + 3):
        ws.adopt(_model(i), f"round {i}")
    assert len(ws.history) == MAX_HISTORY
    assert ws.history[0].note == "round 3" and ws.history[-1].label.startswith(f"{MAX_HISTORY + 3}. ")


def test_a_failed_round_is_used_but_not_remembered():
    ws = Workspace()
    ws.use(partial := _model(3))
    assert ws.model is partial and not ws.history


def test_continued_is_the_current_model_of_the_same_dimensions():
    ws = Workspace()
    assert ws.continued(2) is None
    ws.adopt(flat := _model(), "2d")
    assert ws.continued(2) is flat and ws.continued(3) is None


def test_the_start_is_a_bundled_model_only_without_a_current_one():
    ws = Workspace()
    assert ws.start_from("") is None and ws.model is None  # a new network
    nuclei = ws.start_from("nuclei")
    assert ws.model is nuclei and ws.history[-1].note == "bundled nuclei"
    assert ws.start_from("cells") is None and ws.model is nuclei  # a model is current: it stays
    ws.leave()
    with pytest.raises(UserInputError, match="bundled"):
        ws.start_from("no such model")


def test_undo_gives_back_the_annotations_the_objects_the_prediction_and_the_model():
    ws = Workspace()
    ws.adopt(first := _model(), "round 1")
    ws.shown["cells"] = shown = np.zeros((4, 4), np.uint16)
    ann = np.zeros((4, 4), np.uint8)
    shot = ws.push_undo("cells", "cells annotations", ann, None)
    ann[0, 0] = 2  # the corrections change the layers afterwards: the snapshot is a copy
    ws.shown["cells"] = np.ones((4, 4), np.uint16)
    ws.adopt(_model(), "round 2")
    assert ws.can_undo and ws.undo() is shot
    assert ws.model is first and ws.shown["cells"] is shown and shot.annotations[0, 0] == 0 and shot.objects is None
    assert not ws.can_undo and ws.undo() is None


def test_a_snapshot_of_corrections_that_were_not_applied_is_dropped():
    ws = Workspace()
    shot = ws.push_undo("cells", "cells annotations", np.zeros((2, 2)), np.zeros((2, 2)))
    ws.drop_undo(shot)
    assert not ws.can_undo
