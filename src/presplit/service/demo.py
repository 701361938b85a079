"""The demo fleet ``presplit serve`` runs when no scenario is given: small, lively, self-contained.

Eight hosts in two racks fed by a synthetic day (PlanetLab format, written
beside the journal) whose guests swing in correlated groups, so within
minutes of wall time the dashboard shows placements, a patch window's split,
re-pin and merge, forecast relief by live migration, and hosts switched off.
Nothing is downloaded; the trace is generated from a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_trace(folder: Path, n_vms: int = 24, steps: int = 288, seed: int = 7) -> Path:
    """A day of 5-minute CPU percentages per VM: a group wave (period 1-3 h), a slow drift and noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    groups = 4
    periods = rng.uniform(12, 36, groups)
    phases = rng.uniform(0, 2 * np.pi, groups)
    for i in range(n_vms):
        g = i % groups
        base = rng.uniform(15, 35)
        wave = 30 * (0.5 + 0.5 * np.sin(2 * np.pi * t / periods[g] + phases[g]))
        ramp = np.clip((t - 6) / 12, 0, 1) * rng.uniform(10, 30)  # demand grows in the first 1.5 h
        values = np.clip(base + wave + ramp + rng.normal(0, 6, steps), 1, 99).astype(int)
        (folder / f"vm_{i:03d}").write_text("\n".join(map(str, values)) + "\n")
    return folder


def demo_scenario(folder: str | Path, *, hosts: int = 8, vms: int = 24, seed: int = 7) -> Path:
    """Write the demo scenario (YAML and its trace) into ``folder``; returns the YAML's path."""
    folder = Path(folder)
    day = write_trace(folder / "demo-trace", vms, seed=seed)
    text = f"""# presplit serve's demo fleet (generated; see presplit.service.demo)
name: demo
engine: domains
interval_s: 300
horizon: 24h
start: 2011-03-03T00:00:00+00:00
hosts:
  - {{name: h, count: {hosts}, cores: 8, mips_per_core: 1000, ram_gb: 32, nic_gbit: 10, racks: 2,
      boot_delay_s: 60, power_w: [100, 120, 140, 160, 180, 200, 220, 240, 260, 280, 300]}}
services:
  minimal:
    - {{name: vmm, cores: 0.5, mem_gb: 1}}
migration: {{bandwidth_share: 0.5, provision_s: 30}}
patch:
  duration_per_domain: 10m
  calendar:
    groups:
      a: ["h-00", "h-01"]
    rules:
      - {{group: a, rrule: "FREQ=HOURLY;INTERVAL=4", dtstart: "2011-03-03T01:00", duration: 2h, tz: UTC,
          name: every 4h}}
guests:
  trace: {day}
  default_size: {{cores: 2, ram_gb: 4}}
  source_mips_per_core: 1000
  cpu_overcommit: 3
  replicas: 1
  seed: {seed}
  arrivals: first-nonzero
"""
    path = folder / "demo.yaml"
    path.write_text(text)
    return path
