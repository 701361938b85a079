"""The service's own error: a command the world or the journal refuses, with the HTTP status it maps to."""

from __future__ import annotations

from presplit.errors import PresplitError


class ServiceError(PresplitError):
    """A command the world or the journal refuses; ``status`` is the HTTP status it maps to."""

    def __init__(self, status: int, message: str, loc: tuple = ()) -> None:
        super().__init__(message)
        self.status, self.message, self.loc = status, message, loc
