"""Inputs the CLI tests share (a plain module: conftest names clash across test folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# A small split-domain scenario; ``.format(trace=...)`` names its trace.
SMALL_SCENARIO = """
name: small
engine: domains
hosts:
  - {{name: h, count: 4, cores: 8, mips_per_core: 1000, ram_gb: 64, racks: 2,
     power_w: [100, 130, 150, 170, 190, 210, 230, 250, 270, 290, 310]}}
services:
  minimal: [{{name: vmm, cores: 1, mem_gb: 2}}]
guests:
  trace: {trace}
  default_size: {{cores: 1, ram_gb: 2}}
  arrivals: at-start
start: "2011-03-03T00:00:00+00:00"
horizon: 2h
"""


def make_day(folder: Path, n_vms: int = 40, seed: int = 0) -> Path:
    """A PlanetLab-style day: one file per VM, 288 integer CPU percents."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    base = rng.integers(5, 60, size=n_vms)
    for i in range(n_vms):
        wave = 25 * np.sin(np.linspace(0, 6 * np.pi, 288) + i)
        values = np.clip(base[i] + wave + rng.normal(0, 8, 288), 0, 99).astype(int)
        (folder / f"vm_{i:03d}").write_text("\n".join(map(str, values)) + "\n")
    return folder
