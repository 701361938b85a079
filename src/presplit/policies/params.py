"""A policy's tunable parameters, declared once with their ranges, and the schema that checks them.

A policy is a dataclass; each numeric field is a parameter a profile (YAML,
or ``PUT /api/profile``) may set. :func:`param` declares a field's range::

    target: float = param(0.8, gt=0, le=1, doc="...")

:func:`validate_args` checks a profile's ``args`` against a pydantic model
built from those declarations: every value a finite number (no NaN or
infinity, no bool, no string), whole numbers for integer fields, inside the
declared range (a numeric field without a declared range must be >= 0); no
unknown names. Fields that are not numbers (``kind``, ``name``,
``needs_forecasts``) are not parameters: setting them is an error, because
they say what the policy *is*, not how it is tuned. A policy may add checks
across fields in ``__post_init__`` (a ``ValueError`` there is reported like a
range error); the values are applied with :func:`dataclasses.replace`, so it
runs.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from presplit.errors import InputError

_RANGE_KEYS = ("gt", "ge", "lt", "le")


def param(default, *, gt=None, ge=None, lt=None, le=None, doc: str = ""):
    """A dataclass field that is a tunable parameter with a range."""
    bounds = {k: v for k, v in zip(_RANGE_KEYS, (gt, ge, lt, le)) if v is not None}
    return dataclasses.field(default=default, metadata={"bounds": bounds, "doc": doc})


def _a_number(value):
    # Lax pydantic would take True as 1 and "0.8" as 0.8; a profile that says either is a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


def parameters(cls) -> dict[str, dataclasses.Field]:
    """The tunable fields of a policy class: its numeric dataclass fields."""
    if not dataclasses.is_dataclass(cls):
        return {}
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default
        if isinstance(default, bool) or not isinstance(default, (int, float)):
            continue
        out[f.name] = f
    return out


def describe(cls) -> list[tuple[str, str, Any, dict, str]]:
    """(name, type, default, bounds, doc) of every parameter, for help texts and listings."""
    return [(name, type(f.default).__name__, f.default, f.metadata.get("bounds") or {"ge": 0}, f.metadata.get("doc", ""))
            for name, f in parameters(cls).items()]


@lru_cache(maxsize=None)
def args_model(cls) -> type[BaseModel]:
    """The pydantic model of a policy's arguments (all optional, extra names forbidden)."""
    fields = {}
    for name, f in parameters(cls).items():
        kind = int if isinstance(f.default, int) else float
        bounds = f.metadata.get("bounds") or {"ge": 0}
        fields[name] = (Annotated[kind, BeforeValidator(_a_number)], Field(None, **bounds))
    return create_model(f"{cls.__name__}Args", __config__=ConfigDict(extra="forbid"), **fields)


class ArgumentError(InputError):  # bad input (still a ValueError, as it always was)
    """A bad argument: ``key`` is its name ('' when the problem spans fields), ``expected`` what would do."""

    def __init__(self, key: str, message: str, expected: str = "") -> None:
        super().__init__(message)
        self.key, self.message, self.expected = key, message, expected


def _expected(cls, name: str) -> str:
    f = parameters(cls).get(name)
    if f is None:
        names = sorted(parameters(cls))
        return ("one of " + ", ".join(names)) if names else "no arguments (this policy takes none)"
    bounds = f.metadata.get("bounds") or {"ge": 0}
    words = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    kind = "a whole number" if isinstance(f.default, int) else "a finite number"
    return f"{kind} " + " and ".join(f"{words[k]} {v:g}" for k, v in bounds.items())


def validate_args(policy, args: dict):
    """``policy`` with ``args`` applied, checked; raises :class:`ArgumentError` naming the first bad one."""
    cls = type(policy)
    if not isinstance(args, dict):
        raise ArgumentError("", f"{args!r}", "a mapping of argument names to values")
    for name in args:
        if not isinstance(name, str) or name not in parameters(cls):
            fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
            why = (f"{name!r} is not a tunable parameter of policy {getattr(policy, 'name', cls.__name__)!r}"
                   if name in fields else f"policy {getattr(policy, 'name', cls.__name__)!r} has no argument {name!r}")
            raise ArgumentError(str(name), why, _expected(cls, ""))
    try:
        checked = args_model(cls).model_validate(args)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ArgumentError(name, f"{args.get(name)!r}: {msg}", _expected(cls, name)) from None
    values = {k: v for k, v in checked.model_dump().items() if k in args}
    if not values:
        return policy
    try:
        return dataclasses.replace(policy, **values)
    except ValueError as exc:
        raise ArgumentError("", str(exc)) from None
