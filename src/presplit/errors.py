"""The root of presplit's own errors, and how the command line reports them.

Every error that presplit raises on purpose -- a bad trace line, an unknown
policy, a damaged store, a refused change -- derives from
:class:`PresplitError`, so a face (the CLI, the service) can tell "the input or
the world is wrong, say so in one line" from "presplit has a bug". Each class
also keeps the builtin base it had (``ValueError`` for bad input,
``RuntimeError`` for a world that refuses), so existing ``except ValueError``
handlers keep working.

``exit_code``: what the CLI exits with -- 2 for a usage problem (a bad option,
file or value the user passed), 1 for a runtime failure (a store that cannot
be opened, a backend that refuses).
"""

from __future__ import annotations


class PresplitError(Exception):
    """An error with a message a user can act on (which input, what was expected)."""

    exit_code = 1


class InputError(PresplitError, ValueError):
    """Bad input: an option, a file, a value. The CLI exits 2."""

    exit_code = 2


class StoreError(PresplitError, RuntimeError):
    """A journal or world store that is missing, damaged, or belongs to another run."""

    exit_code = 1
