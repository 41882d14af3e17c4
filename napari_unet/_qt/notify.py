"""napari notifications: the widget's one way to tell the user something."""

from __future__ import annotations


def notify(message: str, error: bool = False) -> None:
    """Show ``message`` as a napari notification (an error notification when ``error``)."""
    from napari.utils.notifications import show_error, show_info

    (show_error if error else show_info)(message)
