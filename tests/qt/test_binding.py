"""The GUI tests run on the Qt binding they are asked for: CI's PyQt5 pass once ran on PyQt6
unnoticed (pytest-qt ignores QT_API and imports its own pick first; qtpy then follows it)."""

import os
from pathlib import Path

import pytest


def _requested_binding() -> str | None:
    """PYTEST_QT_API or QT_API as this process was started with (qtpy rewrites os.environ's
    QT_API to the binding it fell back to)."""
    start = Path("/proc/self/environ")
    env = dict(os.environ)
    if start.exists():
        env = dict(item.split("=", 1) for item in start.read_text().split("\0") if "=" in item)
    return env.get("PYTEST_QT_API") or env.get("QT_API") or None


@pytest.mark.gui
def test_napari_and_pytest_qt_use_the_requested_binding(qtbot):
    import qtpy
    from pytestqt.qt_compat import qt_api

    in_use = qtpy.API_NAME.lower()
    assert in_use == qt_api.pytest_qt_api  # one binding in the process
    requested = _requested_binding()
    if requested:
        assert in_use == requested.lower(), f"asked for {requested}, running on {qtpy.API_NAME}"
