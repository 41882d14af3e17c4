"""The engine never imports Qt or napari; the package root and sample data never import torch."""

import subprocess
import sys

ENGINE = ["model", "data", "augment", "losses", "train", "predict", "instances", "_split", "_windows", "_components",
          "hmaxima", "_holes", "chunked", "io", "cli", "metrics", "scribbles", "device", "_layer_data",
          "_trainer_process", "_trainer_child", "demo"]


def modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_engine_imports_no_qt_or_napari():
    mods = modules_after("\n".join(f"import napari_unet.{m}" for m in ENGINE))
    assert "torch" in mods
    leaked = {m.split(".")[0] for m in mods} & {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui"}
    assert not leaked


def test_package_and_sample_data_do_not_import_torch():
    mods = modules_after("import napari_unet, napari_unet._sample_data\n"
                         "napari_unet._sample_data.make_nuclei_scribbles()")
    assert "torch" not in mods
