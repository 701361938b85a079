"""The raw per-VM samples every Bitbrains-style reader hands to the regulariser.

This module owns the canonical column names (those of the long-format table,
``vm_id``, ``timestamp``, ``cpu_usage_mhz``, ...), the :class:`Samples`
container, and the rule for ordering guest ids. Readers differ only in how they
get from their file layout to a :class:`Samples`; everything after that
(cleaning, units, the time grid) is shared in :mod:`presplit.traces.regularise`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presplit.extras import require

require("parquet", "pyarrow")  # before pyarrow: a missing extra is one line, not a traceback
import pyarrow as pa
import pyarrow.compute as pc

# The per-row measurements the regulariser needs, in canonical names.
# Timestamps are seconds since the epoch.
MEASUREMENTS = (
    "timestamp",
    "cpu_capacity_mhz",
    "cpu_usage_mhz",
    "mem_capacity_kb",
    "mem_usage_kb",
    "disk_read_kbps",
    "disk_write_kbps",
    "net_rx_kbps",
    "net_tx_kbps",
)

_INTEGER_ID = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class Samples:
    """Irregular per-VM rows, before any cleaning.

    ``guest[i]`` indexes ``guest_ids`` for row ``i``; ``columns`` maps every
    name in :data:`MEASUREMENTS` to a float64 array of the same length.
    ``guest_ids`` is already in the order the workload will use.
    """

    source: Path
    name: str
    guest_ids: tuple[str, ...]
    guest: np.ndarray
    columns: Mapping[str, np.ndarray]


def id_order(ids: Sequence[str]) -> np.ndarray:
    """Permutation sorting ids numerically when all are integers, else as strings."""
    if ids and all(_INTEGER_ID.fullmatch(i) for i in ids):
        keys: list = [int(i) for i in ids]
    else:
        keys = list(ids)
    return np.array(sorted(range(len(ids)), key=keys.__getitem__), dtype=np.int64)


def index_guests(vm_ids: pa.Array | pa.ChunkedArray) -> tuple[tuple[str, ...], np.ndarray]:
    """Ordered distinct ids and, per row, the position of its id in that order.

    Dictionary-encodes in C++ so only the distinct ids (hundreds) are touched
    in Python, not the rows (hundreds of thousands).
    """
    if isinstance(vm_ids, pa.ChunkedArray):
        vm_ids = vm_ids.combine_chunks()
    encoded = pc.dictionary_encode(vm_ids)
    names = [str(v) for v in encoded.dictionary.to_pylist()]
    order = id_order(names)
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return tuple(names[i] for i in order), rank[codes]


# --------------------------------------------------------------------------- plausible values

# The range every measurement must lie in, row by row: (lowest, highest, what it
# is). No measurement can be negative. The upper bounds are far above any real VM
# (the Bitbrains week peaks at 86,400 MHz, 512 GB and 450 MB/s) yet refuse a
# value that is a unit slip or garbage: one absurd capacity makes its guest's
# CPU fraction ~0 and a synthetic fleet built from it idle, and absurd usage
# overflows the sums the simulators take.
MAX_MHZ = 1e7  # 10 THz: ~3,800 cores at 2.6 GHz
MAX_KB = float(2**40)  # 1 PiB of memory, in KB
MAX_KB_S = 1e9  # 1 TB/s of disk or network throughput, in KB/s

RANGES: dict[str, tuple[float, float, str]] = {
    "cpu_capacity_mhz": (0.0, MAX_MHZ, "a CPU speed in MHz from 0 to 1e7 = 10 THz"),
    "cpu_usage_mhz": (0.0, MAX_MHZ, "a CPU speed in MHz from 0 to 1e7 = 10 THz"),
    "mem_capacity_kb": (0.0, MAX_KB, "a memory size in KB from 0 to 2^40 = 1 PiB"),
    "mem_usage_kb": (0.0, MAX_KB, "a memory size in KB from 0 to 2^40 = 1 PiB"),
    "disk_read_kbps": (0.0, MAX_KB_S, "a throughput in KB/s from 0 to 1e9 = 1 TB/s"),
    "disk_write_kbps": (0.0, MAX_KB_S, "a throughput in KB/s from 0 to 1e9 = 1 TB/s"),
    "net_rx_kbps": (0.0, MAX_KB_S, "a throughput in KB/s from 0 to 1e9 = 1 TB/s"),
    "net_tx_kbps": (0.0, MAX_KB_S, "a throughput in KB/s from 0 to 1e9 = 1 TB/s"),
    # Read but not used: only their sign is checked.
    "cpu_cores": (0.0, float("inf"), "a core count >= 0"),
    "cpu_usage_pct": (0.0, float("inf"), "a percent >= 0"),
}
"""Per canonical column: the accepted range and how the error message describes it."""


def range_problem(value: float, low: float, high: float) -> str | None:
    """What is wrong with a finite ``value`` given its range, or None when it fits."""
    if value < low:
        return f"{value:.10g} is negative" if low == 0 and value < 0 else f"{value:.10g} is below {low:.10g}"
    if value > high:
        return f"{value:.10g} is above the plausible maximum"
    return None


def first_out_of_range(values: np.ndarray, low: float, high: float) -> int | None:
    """Index of the first value outside [low, high], or None (vectorised; NaN counts as in range)."""
    bad = (values < low) | (values > high)
    if not bad.any():
        return None
    return int(np.flatnonzero(bad)[0])
