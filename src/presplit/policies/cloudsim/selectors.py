"""CloudSim's choices of which guest leaves an overloaded host (CCPE 2012, section 6).

MMT: least RAM (shortest migration); MU: least CPU utilisation; MC: the guest
whose history is best explained by the others' (highest R^2); RS: uniformly
random, seeded here so runs are reproducible. Guests already migrating are
never chosen; ties go to the first guest in the host's list.
"""

from __future__ import annotations

import numpy as np


def _movable(view, host: int) -> list[int]:
    return [g for g in view.lists[host] if not view.in_migration[g]]


class MinimumMigrationTime:
    def pick(self, view, host: int) -> int | None:
        vms = _movable(view, host)
        return min(vms, key=lambda g: view.g_ram[g]) if vms else None


class MinimumUtilisation:
    def pick(self, view, host: int) -> int | None:
        vms = _movable(view, host)
        return min(vms, key=lambda g: view.requested[g] / view.g_mips[g]) if vms else None


class RandomSelection:
    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def pick(self, view, host: int) -> int | None:
        vms = _movable(view, host)
        return vms[int(self.rng.integers(len(vms)))] if vms else None


class MaximumCorrelation:
    """Highest R^2 of a guest's history regressed (with intercept) on the others'."""

    def __init__(self) -> None:
        self.fallback = MinimumMigrationTime()

    def pick(self, view, host: int) -> int | None:
        vms = _movable(view, host)
        n, m = len(vms), view.history_len
        # OLS needs more samples than coefficients, else CloudSim falls back to MMT.
        if n < 2 or m <= n:
            return self.fallback.pick(view, host)
        data = view.g_hist_mips[vms, :m] / view.g_mips[vms][:, None]
        best, best_r2 = 0, 0.0
        for i in range(n):
            y = data[i]
            x = np.column_stack([np.ones(m), np.delete(data, i, axis=0).T])
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            sst = float(((y - y.mean()) ** 2).sum())
            if sst == 0:
                continue
            r2 = 1.0 - float(((y - x @ coef) ** 2).sum()) / sst
            if r2 > best_r2:
                best, best_r2 = i, r2
        return vms[best]
