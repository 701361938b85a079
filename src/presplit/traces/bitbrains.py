"""Bitbrains GWA-T-12 raw per-VM CSV files (one file per VM, ``;\\t`` separated).

This module owns the raw file layout: the header, the file-stem-as-VM-id rule
and the folder listing. Cleaning, units and the 300 s grid are shared with the
long-table reader in :mod:`presplit.traces.regularise`.

Quirk of the trace: the first column is headed ``Timestamp [ms]`` but holds
seconds since the epoch (1372629804 is 2013-07-01); we read it as seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from presplit.model.workload import Workload
from presplit.traces.delimited import read_header, read_numeric_table
from presplit.traces.errors import TraceError
from presplit.traces.regularise import regularise
from presplit.traces.samples import MEASUREMENTS, RANGES, Samples, id_order

# Raw header name -> canonical column name, in file order.
RAW_COLUMNS = {
    "Timestamp [ms]": "timestamp",
    "CPU cores": "cpu_cores",
    "CPU capacity provisioned [MHZ]": "cpu_capacity_mhz",
    "CPU usage [MHZ]": "cpu_usage_mhz",
    "CPU usage [%]": "cpu_usage_pct",
    "Memory capacity provisioned [KB]": "mem_capacity_kb",
    "Memory usage [KB]": "mem_usage_kb",
    "Disk read throughput [KB/s]": "disk_read_kbps",
    "Disk write throughput [KB/s]": "disk_write_kbps",
    "Network received throughput [KB/s]": "net_rx_kbps",
    "Network transmitted throughput [KB/s]": "net_tx_kbps",
}
RAW_DELIMITER = ";"  # followed by a tab, which the number parser skips as whitespace
RAW_HEADER_TEXT = ";\t".join(RAW_COLUMNS)
RAW_FIRST_COLUMN = next(iter(RAW_COLUMNS))
# Accepted values per raw column (see presplit.traces.samples.RANGES); the timestamp is unchecked.
RAW_RANGES = {raw: RANGES[name] for raw, name in RAW_COLUMNS.items() if name in RANGES}


def read_bitbrains_csv(path_or_folder: str | Path, *, interval_s: int = 300) -> Workload:
    """Read one raw per-VM CSV, or a folder of them, onto one common grid.

    The VM id is the file stem; ids sort numerically when all are integers.
    See :mod:`presplit.traces.regularise` for cleaning and the grid (the grid
    spans the union of all VMs' time ranges).
    """
    root = Path(path_or_folder)
    files = _list_files(root)
    stems = [f.stem for f in files]
    order = id_order(stems)
    files = [files[i] for i in order]
    per_file = [_read_one(f) for f in files]
    guest = np.concatenate([np.full(len(c["timestamp"]), i, dtype=np.int64) for i, c in enumerate(per_file)])
    columns = {name: np.concatenate([c[name] for c in per_file]) for name in MEASUREMENTS}
    samples = Samples(
        source=root,
        name=root.stem if root.is_file() else root.name,
        guest_ids=tuple(f.stem for f in files),
        guest=guest,
        columns=columns,
    )
    return regularise(samples, interval_s=interval_s)


def _list_files(root: Path) -> list[Path]:
    if not root.exists():
        raise TraceError(root, "no such file or folder", expected="a Bitbrains per-VM .csv or a folder of them")
    if root.is_file():
        return [root]
    files = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv" and not p.name.startswith(".")]
    if not files:
        raise TraceError(root, "no .csv files in folder", expected="one Bitbrains .csv per VM")
    return files


def _read_one(path: Path) -> dict[str, np.ndarray]:
    """One VM's rows in canonical column names."""
    names = read_header(path, RAW_DELIMITER, expected=RAW_HEADER_TEXT)
    _check_header(path, names)
    raw = read_numeric_table(path, names, RAW_DELIMITER, ranges=RAW_RANGES)
    return {RAW_COLUMNS[name]: values for name, values in raw.items()}


def _check_header(path: Path, names: list[str]) -> None:
    expected = f"the Bitbrains header {RAW_HEADER_TEXT!r}"
    if len(names) == 1 and names[0] not in RAW_COLUMNS:
        # The file was routed here (a folder of .csv files) but is not ';'-separated.
        other = next((repr(d) for d in (",", "\t", " ") if d in names[0]), None)
        found = f"separated by {other}, not by ';'" if other else "one column: no ';' separator"
        raise TraceError(path, f"header is {found}", line=1, expected=expected)
    for name in names:
        if name not in RAW_COLUMNS:
            raise TraceError(path, "unknown column in header", line=1, column=name, expected=expected)
    for name in RAW_COLUMNS:
        if name not in names:
            raise TraceError(path, "column missing from header", line=1, column=name, expected=expected)
    if len(names) != len(RAW_COLUMNS):
        raise TraceError(path, f"{len(names)} columns, some repeated", line=1, expected=expected)
