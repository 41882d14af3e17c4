"""The one exception type users see.

A ``UserInputError`` carries a single line that names the problem and the fix.
The CLI prints it without a traceback; the widget shows it as a notification.
"""


class UserInputError(ValueError):
    """Bad input from the user (files, layers, options): one line, problem and fix."""
