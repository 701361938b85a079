"""The one error type trace readers raise: it names the file, the place, and what was expected."""

from __future__ import annotations

from pathlib import Path

from presplit.errors import InputError


class TraceError(InputError):
    """Bad trace input. ``str()`` reads like ``file:line: message (expected ...)``."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None,
                 column: str | None = None, expected: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.expected = expected
        where = self.path
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f" column {column!r}"
        self.message = message
        text = f"{where}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)

    def __reduce__(self):
        # Rebuilt from its parts when it crosses a process boundary (``--jobs N``);
        # the default (``cls(*args)``) would call __init__ with the formatted text only.
        return _rebuild, (type(self), self.path, self.message, self.line, self.column, self.expected)


def _rebuild(cls, path, message, line, column, expected):
    return cls(path, message, line=line, column=column, expected=expected)
