"""``napari-unet demo --headless``: the quick start without a window."""

from napari_unet import cli
from napari_unet.engine import io, modelfile


def test_headless_demo_trains_predicts_and_scores(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--headless", "--out-dir", str(out), "--time-budget", "3"]) == 0
    assert modelfile.load_model(out / "model.pt").summary["total_steps"] > 0
    masks = io.read_image(out / "nuclei_masks.tif")
    assert masks.shape == (520, 696) and masks.max() > 5  # instances: one id per nucleus
    dice = float(capsys.readouterr().err.split("Dice against the sample's mask: ")[1].split(";")[0])
    assert dice > 0.5
