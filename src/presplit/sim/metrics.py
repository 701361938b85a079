"""Energy and SLA accounting, computed the way CloudSim 3.0.3 computes them.

At each update the previous state of every host and guest is integrated over
the time since: energy by the trapezoid rule between the previous and the
current utilisation (0 W when the host was idle before, i.e. switched off);
SLATAH as a ratio of sums (time a host was active with allocated < requested
MIPS over time hosts were active); PDM as the MIPS withheld from migrating
guests over all MIPS requested; the overall SLA violation as all MIPS withheld
over all requested. A state recorded again at the same instant replaces the
earlier one, as CloudSim's state histories do.

Two additions for the realistic model, both off for CloudSim's: ``on_until``
(per host, until when it is on: +inf while it holds guests, the end of its
shutdown after the last one left) replaces "idle means off" -- an on host
draws at least its idle power, an off one ``off_power_w``, and a host that
stops mid-interval is split at that instant; ``unmet_mips`` is the demand of
guests waiting for a host, requested and not served.
"""

from __future__ import annotations

import numpy as np

from presplit.model.hardware import power_at


class MetricAccumulator:
    def __init__(self, power_tables: np.ndarray, n_guests: int, off_power_w: float = 0.0) -> None:
        self.tables = power_tables
        self.off_power_w = off_power_w
        n_hosts = len(power_tables)
        self.last_t: float | None = None
        self.prev_util = np.zeros(n_hosts)
        self.prev_watts = power_at(power_tables, self.prev_util)
        self.prev_host_alloc = np.zeros(n_hosts)
        self.prev_host_req = np.zeros(n_hosts)
        self.prev_alloc = np.zeros(n_guests)
        self.prev_req = np.zeros(n_guests)
        self.prev_mig = np.zeros(n_guests, dtype=bool)
        self.joules = 0.0
        self.active_s = 0.0
        self.violation_s = 0.0
        self.requested = 0.0
        self.allocated = 0.0
        self.migration_shortfall = 0.0
        self.prev_on_until: np.ndarray | None = None
        self.prev_unmet = 0.0

    @staticmethod
    def _cap(u: np.ndarray) -> np.ndarray:
        # CloudSim rounds a utilisation in (1, 1.01) down to 1.
        return np.where((u > 1.0) & (u < 1.01), 1.0, u)

    def add_boot(self, host: int, seconds: float) -> None:
        self.joules += self.tables[host, 0] * seconds

    def record(self, t, util, host_alloc, host_req, live, alloc, req, mig, *, on_until=None,
               unmet_mips: float = 0.0) -> None:
        util = self._cap(util)
        now_watts = power_at(self.tables, util)
        if self.last_t is not None and t > self.last_t:
            dt = t - self.last_t
            if self.prev_on_until is None:
                on = self.prev_util > 0
                watts = np.where(on, (self.prev_watts + now_watts) / 2.0, self.off_power_w)
                self.joules += float(watts.sum()) * dt
            else:
                on_s = np.clip(self.prev_on_until - self.last_t, 0.0, dt)
                self.joules += float((on_s * (self.prev_watts + now_watts) / 2.0
                                      + (dt - on_s) * self.off_power_w).sum())
            self.requested += self.prev_unmet * dt
            active = self.prev_host_alloc > 0
            self.active_s += dt * int(active.sum())
            self.violation_s += dt * int((active & (self.prev_host_alloc < self.prev_host_req)).sum())
            pa, pr, pm = self.prev_alloc[live], self.prev_req[live], self.prev_mig[live]
            self.allocated += float(pa.sum()) * dt
            self.requested += float(pr.sum()) * dt
            self.migration_shortfall += float((pr - pa)[pm].sum()) * dt
        self.last_t = t
        self.prev_on_until = on_until
        self.prev_unmet = unmet_mips
        self.prev_util = util
        self.prev_watts = now_watts
        self.prev_host_alloc = host_alloc
        self.prev_host_req = host_req
        self.prev_alloc[live] = alloc
        self.prev_req[live] = req
        self.prev_mig[live] = mig

    def finish(self, migrations: int) -> dict[str, float]:
        energy = self.joules / 3.6e6
        slatah = self.violation_s / self.active_s if self.active_s else 0.0
        pdm = self.migration_shortfall / self.requested if self.requested else 0.0
        slav = slatah * pdm
        overall = (self.requested - self.allocated) / self.requested if self.requested else 0.0
        return {
            "energy_kwh": energy,
            "migrations": int(migrations),
            "slatah": slatah,
            "pdm": pdm,
            "slav": slav,
            "esv": energy * slav,
            "overall_sla_violation": overall,
            "served_mips_s": self.requested,
        }
