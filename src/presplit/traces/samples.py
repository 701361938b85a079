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
