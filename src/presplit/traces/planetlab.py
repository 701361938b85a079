"""PlanetLab day folders (CloudSim's workload): one file per VM, 288 integer CPU percents.

File names are sorted as plain strings (Python ``sorted``), which is the order
the CloudSim reference numbers use; names may contain spaces.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from presplit.model.workload import Workload
from presplit.traces.errors import TraceError

PLANETLAB_STEPS = 288
_INTEGER = re.compile(r"[+-]?[0-9]+")
PLANETLAB_INTERVAL_S = 300


def read_planetlab(folder: str | Path, *, steps: int = PLANETLAB_STEPS) -> Workload:
    """Read a PlanetLab day folder; CPU as a fraction (percent / 100)."""
    root = Path(folder)
    if not root.exists():
        raise TraceError(root, "no such trace folder", expected="a PlanetLab day folder")
    if not root.is_dir():
        raise TraceError(root, "not a folder", expected="a PlanetLab day folder of per-VM files")
    names = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if not names:
        raise TraceError(root, "empty folder", expected="one file per VM with 288 CPU percents")
    usage = np.empty((len(names), steps), dtype=np.float64)
    for i, name in enumerate(names):
        usage[i] = _read_one(root / name, steps)
    return Workload(
        name=root.name,
        guest_ids=tuple(names),
        resources=("cpu",),
        usage=(usage / 100.0)[:, :, None],
        interval_s=PLANETLAB_INTERVAL_S,
        units={"cpu": "fraction"},
    )


def _read_one(path: Path, steps: int) -> np.ndarray:
    # Fast path: well-formed files parse in one NumPy call; anything odd is
    # re-read line by line to say exactly where and what is wrong.
    try:
        fields = path.read_bytes().split()
        if len(fields) == steps and all(f.isdigit() for f in fields):
            values = np.array(fields, dtype=np.int64)
            if values.max() <= 100:
                return values.astype(np.float64)
    except (OSError, ValueError):
        pass
    try:
        return _parse_one(path, steps)
    except UnicodeDecodeError as exc:
        # A binary or mis-encoded file; say so instead of leaking a codec error.
        raise TraceError(path, f"not UTF-8 text (byte {exc.start})",
                         expected=f"{steps} lines of integer CPU percents") from None


def _parse_one(path: Path, steps: int) -> np.ndarray:
    out = np.empty(steps, dtype=np.float64)
    n = 0
    lineno = 0
    with path.open("r", encoding="utf-8", errors="strict") as fh:
        for lineno, raw in enumerate(fh, start=1):
            text = raw.strip()
            if not text:
                continue
            if n >= steps:
                raise TraceError(path, f"more than {steps} values", line=lineno,
                                 expected=f"exactly {steps} lines, one per 300 s")
            # Plain ASCII digits only: int() would also take "1_0" and non-ASCII digits.
            if not _INTEGER.fullmatch(text):
                raise TraceError(path, f"not an integer: {text[:40]!r}", line=lineno,
                                 expected="an integer CPU percent 0-100")
            value = int(text)
            if not 0 <= value <= 100:
                raise TraceError(path, f"CPU percent {value} out of range", line=lineno,
                                 expected="an integer CPU percent 0-100")
            out[n] = value
            n += 1
    if n != steps:
        # Point at the line where the next value was due, so an empty file says line 1.
        raise TraceError(path, f"file ends after {n} values", line=lineno + 1,
                         expected=f"exactly {steps} lines, one per 300 s")
    return out
