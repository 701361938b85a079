"""Actions and plans to and from JSON, for the journal (and for people reading it).

It lives with the actions, below the applier, because a world store keys
the actions it carried out by their encoding too (``backends/sim_world.py``),
and a backend must not import ``apply``.

An action is stored as ``{"kind": "MigrateGuest", "args": {...}, "reason": ..., "details": {...}}``;
tuples become lists on the way out and tuples again on the way in, services
become mappings. Non-finite floats become strings ("inf", "-inf", "nan"):
PostgreSQL's JSON refuses them, and the journal must take any detail a
policy attaches.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from presplit.model.domains import Service
from presplit.plan import actions as A

KINDS = A.KINDS  # every registered action kind, by name (presplit.plan.actions)


def plain(x):
    """Numbers, strings, lists and dicts only (numpy and tuples converted; non-finite floats as strings)."""
    if isinstance(x, (bool, str)) or x is None:
        return x
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, Service):
        return {"name": x.name, "cpu_mips": x.cpu_mips, "mem_mb": x.mem_mb, "disk_mb_s": x.disk_mb_s,
                "net_mb_s": x.net_mb_s}
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [plain(v) for v in x]
    return str(x)


def encode_action(a: A.Action) -> dict:
    args = {f.name: plain(getattr(a, f.name)) for f in dataclasses.fields(a) if f.name not in ("reason", "details")}
    return {"kind": a.kind, "args": args, "reason": a.reason, "details": plain(a.details)}


def _tuples(x):
    if isinstance(x, list):
        return tuple(_tuples(v) for v in x)
    return x


def decode_action(data: dict) -> A.Action:
    kind = data.get("kind")
    cls = KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown action kind {kind!r}; expected one of {', '.join(KINDS)}")
    args = {}
    for k, v in dict(data.get("args", {})).items():
        if k == "services" and v is not None:
            args[k] = tuple(Service(s["name"], float(s["cpu_mips"]), float(s["mem_mb"]),
                                    float(s.get("disk_mb_s", 0.0)), float(s.get("net_mb_s", 0.0))) for s in v)
        else:
            args[k] = _tuples(v)
    return cls(**args, reason=data.get("reason", ""), details=data.get("details") or {})


def dumps(x) -> str:
    return json.dumps(plain(x), separators=(",", ":"), allow_nan=False)


def loads(text: str | None):
    return None if text is None else json.loads(text)
