"""napari notifications and questions: the widget's one way to tell (and ask) the user something."""

from __future__ import annotations


def notify(message: str, error: bool = False) -> None:
    """Show ``message`` as a napari notification (an error notification when ``error``)."""
    from napari.utils.notifications import show_error, show_info

    (show_error if error else show_info)(message)


def ask(question: str) -> bool:
    """Ask ``question`` with Yes / No (No is the default); True for Yes."""
    from qtpy.QtWidgets import QMessageBox

    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    answer = QMessageBox.question(None, "napari-unet", question, buttons, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes
