"""The wings' rules, checked over the package's folders (not a hand-kept list):

- every module outside ``napari_unet/_qt/`` imports in a fresh interpreter without Qt, napari,
  magicgui, vispy or superqt (the engine, instances, trainer and CLI never need a display);
- the package root and the sample data never import torch (opening napari stays fast);
- ``instances/`` never imports the engine (scipy and scikit-image only);
- inside the engine, imports run one way (``ENGINE_DIRECTIONS``): training may use prediction and
  the model, prediction and disk the model, every room the floor (layout, convert, convention,
  crops, files), never the other way; the engine never imports the trainer, the CLI or the widget;
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


ENGINE = "napari_unet.engine"
FLOOR = "floor"
# room -> the rooms it may import (itself and the floor always)
ENGINE_DIRECTIONS = {"training": {"prediction", "model"}, "prediction": {"model"}, "disk": {"model"},
                     "model": set(), FLOOR: set()}


def engine_room(module: str) -> str | None:
    """The engine room of a module name ("training", ..., "floor"), None outside the engine."""
    if module != ENGINE and not module.startswith(ENGINE + "."):
        return None
    rest = module[len(ENGINE) + 1:].split(".")
    return rest[0] if rest[0] in ENGINE_DIRECTIONS else FLOOR


def test_imports_run_one_way_between_the_engine_rooms():
    modules = all_modules()
    rooms = {room for room in map(engine_room, modules) if room}
    assert rooms == set(ENGINE_DIRECTIONS), rooms  # every room exists, and no other
    wrong = []
    for name, path in modules.items():
        room = engine_room(name)
        if room is None:
            continue
        for target in imports_of(name, path, set(modules)):
            other = engine_room(target)
            if other is None and target.startswith("napari_unet.") and target != "napari_unet.errors" \
                    and not target.startswith(("napari_unet.instances", "napari_unet.sample_data")) \
                    and target != "napari_unet":
                wrong.append(f"{name} -> {target} (the engine imports no trainer, CLI or widget)")
            elif other not in (None, room, FLOOR) and other not in ENGINE_DIRECTIONS[room]:
                wrong.append(f"{name} -> {target} ({room} may not use {other})")
    assert not wrong, "\n".join(wrong)


def test_the_direction_check_sees_a_wrong_import(tmp_path):
    """The check above reads relative imports inside functions too (a rule that cannot fail is no rule)."""
    fake = tmp_path / "napari_unet" / "engine" / "model" / "fake.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..training import train\n")
    known = {"napari_unet.engine.model.fake", "napari_unet.engine.training.train"}
    found = imports_of("napari_unet.engine.model.fake", fake, known)
    assert found == {"napari_unet.engine.training.train"}
    assert "training" not in ENGINE_DIRECTIONS[engine_room("napari_unet.engine.model.fake")]


def test_no_module_over_400_lines():
    long = {name: n for name, path in all_modules().items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long
