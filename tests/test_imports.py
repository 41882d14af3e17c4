"""The wings' rules, checked over the package's folders (not a hand-kept list):

- every module outside ``napari_unet/_qt/`` imports in a fresh interpreter without Qt, napari,
  magicgui, vispy or superqt (the engine, instances, trainer and CLI never need a display);
- the package root and the sample data never import torch (opening napari stays fast);
- ``instances/`` never imports the engine (scipy and scikit-image only);
- no import circle between the package's modules, counting imports inside functions too;
- no module over 400 lines.
"""

import ast
import subprocess
import sys
from pathlib import Path

import napari_unet

PACKAGE = Path(napari_unet.__file__).parent
GUI = {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "superqt"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_every_module_outside_qt_imports_without_qt_or_napari():
    outside = [m for m in all_modules() if "._qt" not in m and not m.endswith("__main__")]
    assert {"napari_unet.engine.training.train", "napari_unet.instances.windows", "napari_unet.trainer.child",
            "napari_unet.cli.main"} <= set(outside)
    mods = modules_after("\n".join(f"import {m}" for m in outside))
    assert "torch" in mods
    assert not {m.split(".")[0] for m in mods} & GUI


def test_package_and_sample_data_do_not_import_torch():
    mods = modules_after("import napari_unet, napari_unet._qt.sample_data\n"
                         "napari_unet._qt.sample_data.make_nuclei_scribbles()")
    assert "torch" not in mods


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its file (functions included)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names}
    return {m for m in found if m in known and m != name}


def test_no_import_circle_and_instances_never_import_the_engine():
    modules = all_modules()
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    for name, targets in graph.items():
        if name.startswith("napari_unet.instances"):
            assert not {t for t in targets if t.startswith("napari_unet.engine")}, name
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for target in graph[node]:
            assert state.get(target) != 1, "import circle: " + " -> ".join(path + [target])
            if target not in state:
                visit(target, path + [target])
        state[node] = 2
    for name in graph:
        if name not in state:
            visit(name, [name])


def test_no_module_over_400_lines():
    long = {name: n for name, path in all_modules().items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long
