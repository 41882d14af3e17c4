"""The start of a first round, chosen by the strokes: a bundled model that agrees with them, else a new
network."""


from napari_unet.engine.training import start
from tests.conftest import make_blobs, scribbles_from


def test_strokes_a_bundled_model_agrees_with_start_from_it():
    image, mask = make_blobs((128, 128), n=10, radius=9, seed=3)  # bright nuclei on a dark background
    choice = start.choose_start([image[None]], [scribbles_from(mask, every=5)])
    assert choice.name == "nuclei" and choice.scores["nuclei"] >= start.AGREEMENT and "nuclei" in choice.reason


def test_strokes_no_bundled_model_agrees_with_start_a_new_network():
    image, mask = make_blobs((128, 128), n=10, radius=9, seed=3)
    contrary = scribbles_from(mask, every=5)
    contrary[contrary > 0] = 3 - contrary[contrary > 0]  # the blobs called background, the background objects
    choice = start.choose_start([image[None]], [contrary])
    assert choice.name == "" and all(v < start.AGREEMENT for v in choice.scores.values())
    assert "new network" in choice.reason
