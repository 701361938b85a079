"""Online calibration of the host-level upper forecast over the decision's horizon.

The consolidation policy packs a host so that the upper forecast of its
guests' summed demand stays under a target share of its capacity, and that
packing stands for the decision's horizon (a moved guest's cool-down, a
host's hold). Whatever forecaster makes the bound, the claim is: "with these
guests, the host's demand stays under this bound for the next ``horizon``
steps, at level ``q``". That claim can be checked online, host by host: a
tick's bounds are kept with the guest assignment they were made for, the
realised demand of those same guest sets is followed for ``horizon`` steps,
and each host gets a score, its realised peak over the bound, minus 1.

Split-conformal over a sliding window of those scores (Vovk et al.; for
time series with shift, Gibbs & Candes, "Adaptive conformal inference under
distribution shift", NeurIPS 2021) gives the margin: the ``q`` quantile of
the recent scores, by which every bound is multiplied (``bound x (1 +
margin)``), so that a share ``1 - q`` of host-horizons exceed their bound,
as the level promises. With ``gamma > 0`` the level itself is adapted as in
Gibbs & Candes: ``alpha <- alpha + gamma (alpha* - err)`` with ``err`` the
share of hosts whose horizon just ended above their calibrated bound, so the
long-run miss rate meets ``alpha* = 1 - q`` even when the scores drift.

Summing before bounding keeps the correlation: a score is that of a host's
summed series, so guests that rise together make large scores. Nothing is
fitted to a trace beforehand; until a horizon has elapsed the margin is 0
(the uncalibrated bound).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Pending:
    host_of: np.ndarray      # [guests] the assignment the bounds were made for (-1: not placed)
    bound: np.ndarray        # [hosts] calibrated bound then (0: host not active)
    raw: np.ndarray          # [hosts] uncalibrated bound then
    unit: np.ndarray         # [hosts] the unit the score is measured in (the bound itself, or a spread)
    peak: np.ndarray         # [hosts] realised peak of those guest sets since
    age: int = 0


@dataclass
class HostCalibrator:
    """Keeps the margin ``bound x (1 + margin)`` that makes host bounds cover ``level`` of host-horizons."""

    horizon: int
    level: float = 0.95
    window: int = 72          # ticks of scores kept (6 h at 5 min)
    gamma: float = 0.0        # ACI step on the level (0: the plain sliding-window conformal quantile)
    floor: float = 0.0        # the margin never goes below this (0: calibration only widens the bound)
    margin: float = 0.0
    alpha: float = field(init=False)
    _pending: deque = field(default_factory=deque, repr=False)
    _scores: deque = field(default_factory=deque, repr=False)
    misses: int = 0
    scored: int = 0

    def __post_init__(self) -> None:
        self.alpha = 1.0 - self.level
        self._pending = deque()
        self._scores = deque(maxlen=max(1, self.window))

    def observe(self, g_now: np.ndarray, n_hosts: int) -> None:
        """A new sample of every guest's demand: follow the pending guest sets, score those whose horizon ended."""
        done = []
        for rec in self._pending:
            placed = rec.host_of >= 0
            realised = np.bincount(rec.host_of[placed], g_now[placed], minlength=n_hosts)
            np.maximum(rec.peak, realised, out=rec.peak)
            rec.age += 1
            if rec.age >= self.horizon:
                done.append(rec)
        for rec in done:
            self._pending.remove(rec)
            act = rec.raw > 0
            if not act.any():
                continue
            self._scores.append((rec.peak[act] - rec.raw[act]) / rec.unit[act])
            missed = rec.peak[act] > rec.bound[act] * (1 + 1e-9)
            err = float(np.mean(missed))
            self.misses += int(np.sum(missed))
            self.scored += int(act.sum())
            if self.gamma > 0:
                self.alpha = float(np.clip(self.alpha + self.gamma * ((1.0 - self.level) - err), 1e-4, 0.5))
        if self._scores:
            scores = np.concatenate(list(self._scores))
            self.margin = max(self.floor, float(np.quantile(scores, 1.0 - self.alpha)))

    def record(self, host_of: np.ndarray, raw_bound: np.ndarray, unit: np.ndarray | None = None) -> None:
        """This tick's decisions stand: remember the assignment, each host's uncalibrated bound and the unit
        its score is measured in (default: the bound, i.e. the score is the relative excess)."""
        raw = np.asarray(raw_bound, dtype=np.float64)
        unit = raw.copy() if unit is None else np.asarray(unit, dtype=np.float64)
        unit = np.where(unit > 0, unit, np.inf)  # a host with no unit scores 0 (it cannot be calibrated)
        self._pending.append(_Pending(host_of.copy(), self.apply(raw, unit), raw.copy(), unit,
                                      np.zeros_like(raw)))

    def apply(self, raw: np.ndarray, unit: np.ndarray | None = None) -> np.ndarray:
        """The calibrated bound: ``raw + margin x unit`` (``raw x (1 + margin)`` by default)."""
        if unit is None:
            return raw * (1.0 + self.margin)
        return raw + self.margin * np.where(np.isfinite(unit), unit, 0.0)

    def scale(self) -> float:
        return 1.0 + self.margin
