"""Synthetic fleets: more guests than a trace has, made of that trace's real series.

This module owns the resampling method and the on-disk scenario layout that
``presplit fleet generate`` writes and ``presplit sweep`` reads.

Method. Every synthetic guest is a *whole* real guest series drawn with
replacement, then

1. circularly shifted in time by a few steps (uniform in ``-max_shift ..
   +max_shift``), and
2. multiplied sample by sample by ``max(0, 1 + jitter * N(0, 1))`` (one factor
   per guest and step, shared by all of that guest's resources), CPU clipped
   to [0, 1].

Why this keeps what matters for consolidation:

- *Burstiness* lives inside a series (its spikes, their height and how long
  they last). A whole series is copied, so its autocorrelation and its
  marginal distribution are kept; the jitter only perturbs each sample by a
  few percent, far less than PlanetLab's or Bitbrains' own step-to-step
  swings, and a zero stays zero (an idle VM stays idle).
- *Cross-guest correlation* in these traces is mostly the shared time-of-day
  pattern. A shift of a few 5-minute steps moves a guest's daily peak by
  minutes, not hours, so guests still peak together and the fleet's
  aggregate keeps its daily shape; only correlation at lags shorter than the
  shift (e.g. two VMs of one service spiking in the same 5 minutes) is
  blurred. Two copies of one source never coincide exactly (different shift
  or noise), so a policy cannot profit from perfectly correlated twins.
- The wrap-around of the circular shift moves a few samples from one end of
  the trace to the other; for day-long traces that is the quiet hour around
  midnight.

What it does not do: invent new shapes, or keep the *identity* of groups of
VMs (which PlanetLab slices or Bitbrains applications belong together).

Layout written to the output folder::

    manifest.json     host and guest counts, seed, method knobs, source
    trace/            PlanetLab-format day folder (CPU-only, 288 x 300 s sources)
    trace.parquet     or a long table (multi-resource or other lengths), Bitbrains columns
    provenance.csv    synthetic guest -> source guest id and shift

The same source, counts, seed and knobs give byte-identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from presplit.errors import InputError
from presplit.model.workload import Workload

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "presplit-fleet/1"
PLANETLAB_TRACE = "trace"
PARQUET_TRACE = "trace.parquet"
PROVENANCE = "provenance.csv"


class FleetError(InputError):
    """Bad input for a synthetic fleet (counts, knobs, output folder)."""


def check_fleet(source: Workload, n_guests: int, n_hosts: int, *, source_path: str | Path) -> None:
    """Refuse a fleet that could only give a degenerate run, before anything is written.

    - A source with no CPU demand at all (every guest 0 in every step): its
      fleet is idle, and energy over its fluid bound (0) is undefined.
    - Values the readers cannot produce but a hand-made workload could: CPU
      outside [0, 1], negative or non-finite usage, non-finite or non-positive
      capacities -- named by guest.
    - Too few hosts for the guests' memory: the sweep runs the fleet on
      CloudSim's preset (hosts of 4 GB, VM types of 613-1740 MB, reserved in
      full), where a fleet whose memory does not fit cannot even start.
    """
    from presplit.model.hardware import cloudsim_preset

    usage = source.usage
    bad = ~np.isfinite(usage) | (usage < 0)
    if "cpu" in source.resources:
        bad[:, :, source.resources.index("cpu")] |= usage[:, :, source.resources.index("cpu")] > 1.0
    if bad.any():
        g, t, k = (int(x[0]) for x in np.nonzero(bad))
        raise FleetError(f"--from-trace {source_path}: guest {source.guest_ids[g]!r} has {source.resources[k]} "
                         f"{usage[g, t, k]!r} at step {t}; expected finite values >= 0 (CPU a fraction 0..1)")
    cap = source.capacity
    bad_cap = (~np.isfinite(cap) | (cap <= 0)) & ~np.isnan(cap)  # NaN: capacity unknown (allowed)
    if bad_cap.any():
        g, k = (int(x[0]) for x in np.nonzero(bad_cap))
        raise FleetError(f"--from-trace {source_path}: guest {source.guest_ids[g]!r} has {source.resources[k]} "
                         f"capacity {cap[g, k]!r}; expected a finite capacity > 0 (or none)")
    if "cpu" in source.resources and not source.resource("cpu").any():
        raise FleetError(f"--from-trace {source_path}: every guest's CPU is 0 in every step, so a fleet resampled "
                         "from it has no demand to consolidate (its energy over the fluid bound is undefined); "
                         "expected a trace with some CPU demand")
    fleet = cloudsim_preset(n_guests, n_hosts)
    need_mb, have_mb = float(fleet.guest_attr("ram_mb").sum()), float(fleet.host_attr("ram_mb").sum())
    if need_mb > have_mb:
        per_host = float(fleet.host_attr("ram_mb").max())
        raise FleetError(f"--hosts {n_hosts}: too few for {n_guests} guests: on CloudSim's preset their VM types "
                         f"reserve {need_mb:,.0f} MB of memory and {n_hosts} hosts have {have_mb:,.0f} MB; expected "
                         f"at least {int(np.ceil(need_mb / per_host)):,} hosts (or fewer guests)")


@dataclass(frozen=True)
class Resampled:
    workload: Workload
    source_index: np.ndarray  # int [guests]: row of the source workload
    shift: np.ndarray  # int [guests]: circular shift in steps (np.roll amount)


def resample(source: Workload, n_guests: int, *, seed: int, max_shift: int = 3,
             jitter: float = 0.05) -> Resampled:
    """Draw ``n_guests`` series from ``source`` (see the module doc for the method)."""
    if n_guests < 1:
        raise FleetError(f"--guests must be at least 1, got {n_guests}")
    if max_shift < 0:
        raise FleetError(f"max_shift must be >= 0 steps, got {max_shift}")
    if not 0 <= jitter < 1:
        raise FleetError(f"jitter must be in [0, 1), got {jitter}")
    rng = np.random.default_rng(seed)
    # Draw everything in a fixed order so the same seed gives the same fleet.
    picks = rng.integers(0, source.n_guests, size=n_guests)
    shifts = rng.integers(-max_shift, max_shift + 1, size=n_guests)
    factor = np.maximum(0.0, 1.0 + jitter * rng.standard_normal((n_guests, source.n_steps)))

    usage = source.usage[picks] * factor[:, :, None]
    steps = np.arange(source.n_steps)
    # Circular shift per guest: row i becomes np.roll(row, shifts[i]) along time.
    index = (steps[None, :] - shifts[:, None]) % source.n_steps
    usage = np.take_along_axis(usage, index[:, :, None], axis=1)
    if "cpu" in source.resources:
        k = source.resources.index("cpu")
        usage[:, :, k] = np.clip(usage[:, :, k], 0.0, 1.0)
    width = len(str(n_guests))
    workload = Workload(
        name=f"{source.name}-x{n_guests}-s{seed}",
        guest_ids=tuple(f"g{i:0{width}d}" for i in range(n_guests)),
        resources=source.resources,
        usage=usage,
        interval_s=source.interval_s,
        capacity=source.capacity[picks].copy(),
        start_epoch_s=source.start_epoch_s,
        units=dict(source.units),
    )
    return Resampled(workload, picks, shifts)


def is_planetlab_shaped(workload: Workload) -> bool:
    """CPU only, 288 samples of 300 s: the one shape a PlanetLab day folder can hold."""
    from presplit.traces.planetlab import PLANETLAB_INTERVAL_S, PLANETLAB_STEPS

    return (workload.resources == ("cpu",) and workload.n_steps == PLANETLAB_STEPS
            and workload.interval_s == PLANETLAB_INTERVAL_S)


def write_scenario(out: Path, result: Resampled, source: Workload, *, hosts: int, seed: int,
                   source_path: str, max_shift: int, jitter: float) -> dict:
    """Write the scenario folder (module doc) atomically; returns the manifest.

    Everything goes into a temporary sibling first and is renamed into place,
    so an error or an interrupt never leaves a half-written scenario.
    """
    if hosts < 1:
        raise FleetError(f"--hosts must be at least 1, got {hosts}")
    out = Path(out)
    check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the scenario is an ordinary folder
    try:
        wl = result.workload
        if is_planetlab_shaped(wl):
            trace_name, trace_format = PLANETLAB_TRACE, "planetlab"
            _write_planetlab(tmp / trace_name, wl)
        else:
            trace_name, trace_format = PARQUET_TRACE, "parquet-long"
            _write_long_table(tmp / trace_name, wl)
        lines = ["guest,source_guest,shift_steps"]
        lines += [f"{g},{_csv_text(source.guest_ids[i])},{s}"
                  for g, i, s in zip(wl.guest_ids, result.source_index, result.shift)]
        (tmp / PROVENANCE).write_text("\n".join(lines) + "\n", encoding="utf-8")
        manifest = {
            "format": MANIFEST_FORMAT,
            "guests": wl.n_guests,
            "hosts": int(hosts),
            "seed": int(seed),
            "steps": wl.n_steps,
            "interval_s": wl.interval_s,
            "resources": list(wl.resources),
            "trace": trace_name,
            "trace_format": trace_format,
            "method": {"resample": "whole guest series, with replacement",
                       "max_shift_steps": int(max_shift), "jitter": float(jitter)},
            "source": {"path": source_path, "guests": source.n_guests},
            "provenance": PROVENANCE,
        }
        (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def check_output_folder(out: Path) -> None:
    """The scenario folder must be new (or an empty folder): a FleetError otherwise."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FleetError(f"output {out} already exists and is not an empty folder; "
                         "expected a new folder name (or remove it)")


def _csv_text(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _write_planetlab(folder: Path, wl: Workload) -> None:
    folder.mkdir()
    # PlanetLab files hold integer CPU percents; rounding is the format's own resolution.
    percents = np.rint(wl.resource("cpu") * 100.0).astype(np.int64)
    for gid, row in zip(wl.guest_ids, percents):
        (folder / gid).write_text("\n".join(map(str, row.tolist())) + "\n", encoding="ascii")


def _write_long_table(path: Path, wl: Workload) -> None:
    """Bitbrains long columns that :func:`presplit.traces.read_long_table` reads back to ``wl``."""
    from presplit.extras import require

    require("parquet", "pyarrow")
    import pyarrow as pa
    import pyarrow.parquet as pq

    g, t = wl.n_guests, wl.n_steps

    def res(name: str) -> np.ndarray:
        return wl.resource(name) if name in wl.resources else np.zeros((g, t))

    def cap(name: str, fallback: float) -> np.ndarray:
        if name not in wl.resources:
            return np.full(g, fallback)
        c = wl.capacity[:, wl.resources.index(name)]
        # The reader drops rows with zero or unknown capacity; keep every row.
        return np.where(np.isfinite(c) & (c > 0), c, fallback)

    cpu_cap = cap("cpu", 1000.0)
    mem_cap = cap("mem", 1.0)
    start = wl.start_epoch_s or 0.0
    ts = start + np.arange(t, dtype=np.float64) * wl.interval_s
    # Integer ids sort numerically in the reader, keeping the generated order.
    ids = pa.array(np.repeat(np.arange(1, g + 1), t).astype(str))
    table = pa.table({
        "vm_id": ids,
        "timestamp": np.tile(ts, g),
        "cpu_capacity_mhz": np.repeat(cpu_cap, t),
        "cpu_usage_mhz": (res("cpu") * cpu_cap[:, None]).ravel(),
        "mem_capacity_kb": np.repeat(mem_cap * 1024.0, t),
        "mem_usage_kb": (res("mem") * 1024.0).ravel(),
        "disk_read_kbps": res("disk").ravel(),
        "disk_write_kbps": np.zeros(g * t),
        "net_rx_kbps": res("net").ravel(),
        "net_tx_kbps": np.zeros(g * t),
    })
    pq.write_table(table, path)


# --------------------------------------------------------------------------- reading back


@dataclass(frozen=True)
class Scenario:
    """A generated scenario folder as the sweep uses it."""

    root: Path
    trace: Path
    hosts: int
    manifest: dict


def read_manifest(folder: Path) -> Scenario | None:
    """The scenario in ``folder`` if it holds a manifest, else None (a plain trace)."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not (folder.is_dir() and path.is_file()):
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != MANIFEST_FORMAT:
            raise KeyError("format")
        return Scenario(folder, folder / manifest["trace"], int(manifest["hosts"]), manifest)
    except (ValueError, KeyError, TypeError) as exc:
        raise FleetError(f"{path}: not a {MANIFEST_FORMAT} manifest ({exc}); expected the file "
                         "`presplit fleet generate` writes") from None
