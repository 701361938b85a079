"""Bitbrains data in long format: one row per (VM, timestamp), as ``.parquet`` or ``.csv``.

This module owns the long layout: its column names (those of
``rnd_2013-7_first7d.parquet``: ``vm_id``, ``timestamp``, ``cpu_cores``,
``cpu_capacity_mhz``, ...), checking them, and getting columns out of Parquet
or comma-separated text without a per-row Python loop. Cleaning, units and
the grid are the same as for the raw per-VM files and live in
:mod:`presplit.traces.regularise`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from presplit.extras import require

require("parquet", "pyarrow")  # before pyarrow: a missing extra is one line, not a traceback
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from presplit.model.workload import Workload
from presplit.traces.delimited import read_header, read_numeric_table
from presplit.traces.errors import TraceError
from presplit.traces.regularise import regularise
from presplit.traces.samples import (
    MEASUREMENTS, RANGES, Samples, first_out_of_range, index_guests, range_problem,
)

REQUIRED_COLUMNS = ("vm_id", *MEASUREMENTS)
OPTIONAL_COLUMNS = ("cpu_cores",)  # in the parquet; not needed for the four resources
_UNITS_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
_PANDAS_INDEX = "__index_level_"
EXPECTED_TEXT = f"columns {', '.join(REQUIRED_COLUMNS)} (optionally {', '.join(OPTIONAL_COLUMNS)})"


def read_long_table(path: str | Path, *, interval_s: int = 300) -> Workload:
    """Read a long-format ``.parquet`` or ``.csv`` onto one common grid.

    VM ids sort numerically when all are integers, else as strings. Cleaning
    and regularisation are those of :func:`presplit.traces.read_bitbrains_csv`.
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder" if path.is_dir() else "no such file"
        raise TraceError(path, what, expected="a long-format .parquet or .csv file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        vm_ids, columns = _read_parquet(path)
    elif suffix == ".csv":
        vm_ids, columns = _read_csv(path)
    else:
        raise TraceError(path, f"unknown file type {suffix or '(none)'!r}", expected="a .parquet or .csv file")
    guest_ids, guest = index_guests(vm_ids)
    samples = Samples(source=path, name=path.stem, guest_ids=guest_ids, guest=guest, columns=columns)
    return regularise(samples, interval_s=interval_s)


def check_columns(path: Path, names: list[str], *, line: int | None = None) -> None:
    """Reject unknown, missing or repeated columns, naming the first culprit."""
    for name in names:
        if name.startswith(_PANDAS_INDEX):
            continue  # a DataFrame index pandas wrote along; it carries no data we use
        if name not in REQUIRED_COLUMNS and name not in OPTIONAL_COLUMNS:
            raise TraceError(path, "unknown column", line=line, column=name, expected=EXPECTED_TEXT)
    for name in REQUIRED_COLUMNS:
        if name not in names:
            raise TraceError(path, "missing column", line=line, column=name, expected=EXPECTED_TEXT)
    for name in set(names):
        if names.count(name) > 1:
            raise TraceError(path, "repeated column", line=line, column=name, expected=EXPECTED_TEXT)


def _read_csv(path: Path) -> tuple[pa.ChunkedArray, dict[str, np.ndarray]]:
    names = read_header(path, ",", expected=EXPECTED_TEXT)
    check_columns(path, names, line=1)
    table = read_numeric_table(path, names, ",", text_columns=("vm_id",), ranges=RANGES)
    vm_ids = pc.utf8_trim_whitespace(table["vm_id"])
    empty = pc.equal(vm_ids, "").to_numpy(zero_copy_only=False)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise TraceError(path, f"empty VM id in data row {row + 1}", column="vm_id", expected="a VM id in every row")
    return vm_ids, {name: table[name] for name in MEASUREMENTS}


def _read_parquet(path: Path) -> tuple[pa.ChunkedArray, dict[str, np.ndarray]]:
    try:
        schema = pq.read_schema(path)
        check_columns(path, list(schema.names))
        table = pq.read_table(path, columns=list(REQUIRED_COLUMNS))
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise TraceError(path, "no such file", expected="a long-format .parquet file") from None
        raise TraceError(path, f"not a readable Parquet file: {exc}", expected="a long-format .parquet file") from None
    if table.num_rows == 0:
        raise TraceError(path, "no data rows", expected="at least one row")
    vm_ids = table.column("vm_id")
    if vm_ids.null_count:
        raise TraceError(path, f"missing VM id in row {_first_null(vm_ids) + 1}", column="vm_id",
                         expected="a VM id in every row")
    return vm_ids, {name: _numeric_column(path, table, name) for name in MEASUREMENTS}


def _numeric_column(path: Path, table: pa.Table, name: str) -> np.ndarray:
    """One Parquet column as finite float64, or a TraceError naming row and column."""
    col = table.column(name)
    per_second = 1.0
    if pa.types.is_timestamp(col.type):
        # A real timestamp type: take its count of units and scale to epoch seconds.
        per_second = _UNITS_PER_SECOND[col.type.unit]
        col = col.cast(pa.int64())
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise TraceError(path, f"column has type {col.type}", column=name, expected="a numeric column")
    if col.null_count:
        raise TraceError(path, f"missing value in row {_first_null(col) + 1}", column=name,
                         expected="a finite number in every row")
    values = col.to_numpy().astype(np.float64, copy=False)
    if per_second != 1.0:
        values = values / per_second
    low, high, what = RANGES.get(name, (None, None, "a finite number in every row"))
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise TraceError(path, f"not a finite number in row {row + 1}: {values[row]}", column=name,
                         expected=what)
    if low is not None:
        row = first_out_of_range(values, low, high)
        if row is not None:
            raise TraceError(path, f"{range_problem(float(values[row]), low, high)} in row {row + 1}",
                             column=name, expected=what)
    return values


def _first_null(col: pa.ChunkedArray) -> int:
    return int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
