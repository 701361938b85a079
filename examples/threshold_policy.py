"""Threshold consolidation on the CloudSim engine; docs/writing-a-policy.md walks through this file."""
from dataclasses import dataclass
import numpy as np
from presplit.policies.api import first_fit, param


@dataclass
class Threshold:
    high: float = param(0.8, gt=0, le=1, doc="a host above this share of its CPU sheds its biggest guests")
    low: float = param(0.5, gt=0, le=1, doc="a host below this share is emptied if all its guests fit elsewhere")
    engine, migrates, place_initial = "cloudsim", True, staticmethod(first_fit)  # no type annotation: not parameters
    def optimise(self, e):  # -> [(guest, destination host)], judged on the demand at the engine's last update
        r, cap, moves, done = e.requested, self.high * e.h_total, [], np.zeros(e.n_hosts, bool)
        load = np.bincount(e.host_of[e.alive], r[e.alive], minlength=e.n_hosts)
        for h in [*np.flatnonzero(load > cap), *np.argsort(load)]:  # overloaded hosts, then the least loaded
            guests = sorted(e.lists[h], key=lambda g: -r[g])  # biggest first
            if load[h] > cap[h]:  # overloaded: just enough of the biggest guests to get under `high`
                guests = guests[:np.searchsorted(np.cumsum(r[guests]), load[h] - cap[h]) + 1]
            elif done[h] or not 0 < load[h] < self.low * e.h_total[h] or e.in_migration[guests].any():
                continue  # between low and high, touched this step, or a migration in flight: leave it
            new, plan = load.copy(), []  # all of `guests` or none, each to the fullest host it fits under high
            for g in guests:
                ok = (new > 0) & (new + r[g] <= cap) & (np.arange(e.n_hosts) != h)
                if not ok.any():
                    break
                plan.append((g, d := int(np.argmax(np.where(ok, new, -1)))))
                new[h], new[d] = new[h] - r[g], new[d] + r[g]
            else:
                load, moves, done[[h, *(d for _, d in plan)]] = new, moves + plan, True
        return moves
