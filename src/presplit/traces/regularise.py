"""Cleaning and regularising Bitbrains-style samples into a :class:`Workload`.

This module owns everything both Bitbrains readers (raw per-VM CSV and long
table) share once the rows are parsed:

1. **Cleaning.** Rows are put in (guest, timestamp) order with a stable sort,
   so "first" means first in the input. A repeated timestamp of the same guest
   keeps its first row; then rows with zero CPU or memory capacity are
   dropped -- the trace writes those while a VM is not running, and they
   would otherwise read as an idle VM. (Negative, non-finite and absurdly
   large values never get here: the readers refuse them, naming file and
   line, against :data:`presplit.traces.samples.RANGES`.) The order matters only for a
   duplicate pair whose first row has zero capacity: that pair disappears
   completely, as the brief asks ("drop duplicates, keep first", then drop
   zero capacity). In the July 2013 data every duplicate sits inside a
   zero-capacity stretch, so it makes no difference there. A guest left with
   no rows at all is dropped from the workload (logged); if no guest is left
   that is a :class:`TraceError`.
2. **Resources.** ``cpu`` = usage MHz / provisioned MHz per row, clipped to
   [0, 1]; ``mem`` = usage in MB (KB / 1024); ``disk`` = read + write KB/s;
   ``net`` = received + transmitted KB/s. Capacity per guest: ``cpu`` is the
   provisioned MHz and ``mem`` the provisioned MB, each the *largest* value
   the guest reported (the VM's size; it jitters by rounding, e.g. 2599.9997
   vs 2600.0, and memory is resized now and then); ``disk``/``net`` are NaN.
3. **Grid.** Every timestamp goes to slot ``floor(t / interval_s)``, so slots
   are aligned to multiples of ``interval_s`` since the epoch; a slot holding
   several samples takes their mean. All guests share one grid spanning the
   **union** of their time ranges -- from the earliest first sample to the
   latest last sample of any guest -- so no guest loses data (the
   intersection would cut every VM down to the shortest-lived one). Empty
   slots carry the last value forward; slots before a guest's first sample
   take that first sample (carried backward). So a VM that appears late or
   stops early is padded flat, not zero.

All steps are vectorised (one sort, ``bincount`` per resource, an
accumulate for the fill); nothing loops over rows in Python.
"""

from __future__ import annotations

import logging

import numpy as np

from presplit.model.workload import RESOURCES, Workload
from presplit.traces.errors import TraceError
from presplit.traces.samples import Samples

log = logging.getLogger(__name__)

UNITS = {"cpu": "fraction", "mem": "MB", "disk": "KB/s", "net": "KB/s"}

# A grid larger than this many cells (guests x steps) is almost surely a unit
# mistake (timestamps in ms, or a stray 1970 timestamp), not a real trace; the
# whole Bitbrains fastStorage month is ~11 M cells. Refusing early beats an
# out-of-memory kill (each cell costs 4 resources x 8 bytes, plus binning).
MAX_GRID_CELLS = 30_000_000


def regularise(samples: Samples, *, interval_s: int = 300) -> Workload:
    """Clean ``samples`` and put them on one common grid of ``interval_s`` seconds."""
    if interval_s <= 0:
        raise ValueError(f"interval_s must be positive, got {interval_s}")
    guest, cols = _clean(samples)
    guest_ids, guest = _drop_empty_guests(samples, guest)
    values, capacity = _resources(guest, len(guest_ids), cols)
    start_slot, usage = _to_grid(samples, guest, len(guest_ids), cols["timestamp"], values, interval_s)
    return Workload(
        name=samples.name,
        guest_ids=guest_ids,
        resources=RESOURCES,
        usage=usage,
        interval_s=interval_s,
        capacity=capacity,
        start_epoch_s=float(start_slot * interval_s),
        units=dict(UNITS),
    )


def _clean(samples: Samples) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Sort by (guest, time), drop repeated timestamps, then zero-capacity rows."""
    guest = samples.guest
    ts = np.floor(samples.columns["timestamp"]).astype(np.int64)
    if _is_sorted(guest, ts):
        order = None  # the usual case: files are written in time order
    else:
        order = np.lexsort((ts, guest))  # stable: ties keep input order
        guest, ts = guest[order], ts[order]
    duplicate = np.zeros(len(ts), dtype=bool)
    duplicate[1:] = (guest[1:] == guest[:-1]) & (ts[1:] == ts[:-1])

    def take(name: str) -> np.ndarray:
        col = samples.columns[name]
        return col if order is None else col[order]

    cols = {name: take(name) for name in samples.columns if name != "timestamp"}
    zero_cap = (cols["cpu_capacity_mhz"] <= 0) | (cols["mem_capacity_kb"] <= 0)
    keep = ~duplicate & ~zero_cap
    log.info("%s: %d rows, dropped %d duplicate timestamps and %d zero-capacity rows",
             samples.source, len(ts), int(duplicate.sum()), int((zero_cap & ~duplicate).sum()))
    cols = {name: col[keep] for name, col in cols.items()}
    cols["timestamp"] = ts[keep]
    return guest[keep], cols


def _is_sorted(guest: np.ndarray, ts: np.ndarray) -> bool:
    dg = np.diff(guest)
    return bool(np.all((dg > 0) | ((dg == 0) & (np.diff(ts) >= 0))))


def _drop_empty_guests(samples: Samples, guest: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Forget guests with no rows left and renumber the rest densely."""
    present = np.bincount(guest, minlength=len(samples.guest_ids)) > 0
    if not present.any():
        raise TraceError(samples.source, "no usable rows: every row is a repeated timestamp "
                         "or has zero CPU or memory capacity",
                         expected="rows with positive CPU and memory capacity")
    if present.all():
        return samples.guest_ids, guest
    dropped = [g for g, p in zip(samples.guest_ids, present) if not p]
    log.info("%s: dropped %d guests with no usable rows: %s", samples.source, len(dropped), ", ".join(dropped))
    renumber = np.cumsum(present) - 1
    kept = tuple(g for g, p in zip(samples.guest_ids, present) if p)
    return kept, renumber[guest]


def _resources(guest: np.ndarray, n_guests: int, cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-row [rows, 4] values in workload units and per-guest [guests, 4] capacity."""
    values = np.empty((len(guest), len(RESOURCES)), dtype=np.float64)
    values[:, 0] = np.clip(cols["cpu_usage_mhz"] / cols["cpu_capacity_mhz"], 0.0, 1.0)
    values[:, 1] = cols["mem_usage_kb"] / 1024.0
    values[:, 2] = cols["disk_read_kbps"] + cols["disk_write_kbps"]
    values[:, 3] = cols["net_rx_kbps"] + cols["net_tx_kbps"]
    capacity = np.full((n_guests, len(RESOURCES)), np.nan)
    capacity[:, 0] = _per_guest_max(guest, n_guests, cols["cpu_capacity_mhz"])
    capacity[:, 1] = _per_guest_max(guest, n_guests, cols["mem_capacity_kb"]) / 1024.0
    return values, capacity


def _per_guest_max(guest: np.ndarray, n_guests: int, values: np.ndarray) -> np.ndarray:
    out = np.full(n_guests, -np.inf)
    np.maximum.at(out, guest, values)
    return out


def _to_grid(samples: Samples, guest: np.ndarray, n_guests: int, ts: np.ndarray,
             values: np.ndarray, interval_s: int) -> tuple[int, np.ndarray]:
    """Bin rows into slots (mean per slot), fill gaps; returns (first slot, [guests, steps, 4])."""
    slot = ts // interval_s
    start, stop = int(slot.min()), int(slot.max())
    steps = stop - start + 1
    if n_guests * steps > MAX_GRID_CELLS:
        days = steps * interval_s / 86400
        raise TraceError(samples.source, f"timestamps span {days:,.0f} days "
                         f"({n_guests} guests x {steps:,} steps of {interval_s} s)",
                         column="timestamp", expected="timestamps in seconds since the epoch "
                         "covering a plausible trace period")
    cell = guest * steps + (slot - start)
    counts = np.bincount(cell, minlength=n_guests * steps).reshape(n_guests, steps)
    grid = np.empty((n_guests, steps, values.shape[1]), dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        for k in range(values.shape[1]):
            sums = np.bincount(cell, weights=values[:, k], minlength=n_guests * steps)
            grid[:, :, k] = sums.reshape(n_guests, steps) / counts
    return start, _fill_gaps(grid, counts > 0)


def _fill_gaps(grid: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Carry each guest's last sample forward; leading gaps take its first sample."""
    steps = has.shape[1]
    source = np.where(has, np.arange(steps), -1)
    np.maximum.accumulate(source, axis=1, out=source)
    first = has.argmax(axis=1)  # every guest has at least one sample here
    source = np.where(source < 0, first[:, None], source)
    return np.take_along_axis(grid, source[:, :, None], axis=1)
