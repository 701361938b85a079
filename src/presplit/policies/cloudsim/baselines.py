"""CloudSim 3.0.3's published consolidation policies: NPA, DVFS, and detector-selector pairs.

The migrating policies follow PowerVmAllocationPolicyMigrationAbstract: find
overloaded hosts; take guests off each (selector) until it is not; place them
with PABFD (power-aware best fit decreasing) on hosts that are not
overloaded; then, from the least-utilised active host upwards, try to move all
of a host's guests elsewhere so it can be switched off, giving up on a host
as soon as one guest does not fit. They work on an :class:`AllocationView`
and return the moves; the engine carries them out.

Kept on purpose, because the reference numbers depend on them: hosts that
received guests from overloaded hosts may themselves be emptied in the same
step (CloudSim excludes them from a list that is still empty at that point),
and "switched off" and "least utilised" are judged on the utilisation of the
last update, not on the what-if allocation.
"""

from __future__ import annotations

import numpy as np

from presplit.policies.cloudsim import kernel
from presplit.policies.cloudsim.view import AllocationView


class FirstFit:
    """DVFS and NPA: first host that fits; no migrations (CloudSim's PowerVmAllocationPolicySimple)."""

    migrates = False

    def __init__(self, non_power_aware: bool = False) -> None:
        self.non_power_aware = non_power_aware

    def place_initial(self, engine) -> None:
        view = AllocationView(engine)
        for g in range(engine.n_guests):
            r = view.requested[g]
            ok = (view.pe >= r) & (view.avail >= r) & (view.ram_free >= view.g_ram[g])
            hosts = np.flatnonzero(ok)
            if len(hosts) == 0:
                engine.wait(g)  # memory is a limit: it waits (the engine raises where memory is not enforced)
                continue
            view.create(g, int(hosts[0]))
            engine.create(g, int(hosts[0]))

    def optimise(self, engine) -> list[tuple[int, int]]:
        return []


class DetectAndConsolidate:
    """A CloudSim migrating policy: an overload detector plus a guest selector, PABFD placement."""

    migrates = True
    non_power_aware = False

    def __init__(self, detector, selector) -> None:
        self.detector = detector
        self.selector = selector

    def place_initial(self, engine) -> None:
        view = AllocationView(engine)
        nothing = np.zeros(engine.n_hosts, dtype=bool)
        for g in range(engine.n_guests):
            h = view.find_host(g, nothing, self.detector)
            if h is None:
                engine.wait(g)
                continue
            view.create(g, h)
            engine.create(g, h)

    def optimise(self, engine) -> list[tuple[int, int]]:
        if kernel.selector_code(self.selector) is not None:
            return kernel.optimise_step(engine, self.detector, self.selector)
        return self.optimise_in_python(engine)

    def optimise_in_python(self, engine) -> list[tuple[int, int]]:
        """The same step on the Python view: MC's path, and the reference the kernel is tested against."""
        view = AllocationView(engine)
        det = self.detector
        overloaded = view.overloaded(np.arange(engine.n_hosts), det)
        leaving = []
        for h in np.flatnonzero(overloaded):
            h = int(h)
            while True:
                g = self.selector.pick(view, h)
                if g is None:
                    break
                leaving.append(g)
                view.destroy(g, h)
                if not view.overloaded(np.array([h]), det)[0]:
                    break
        moves = []
        for g in sorted(leaving, key=lambda g: -view.requested[g]):
            dst = view.find_host(g, overloaded, det)
            if dst is not None:
                view.create(g, dst)
                moves.append((g, dst))
        moves += self._consolidate(view, overloaded)
        return moves

    def _consolidate(self, view, overloaded: np.ndarray) -> list[tuple[int, int]]:
        util = view.util_stale
        off = util == 0
        no_source = overloaded | off  # hosts not to empty
        no_target = overloaded | off  # hosts not to place on
        moves = []
        while not no_source.all():
            eligible = ~no_source & (util > 0) & (util < 1) & (view.count > 0)
            if not eligible.any():
                break
            h = int(np.flatnonzero(eligible)[np.argmin(util[eligible])])
            no_source[h] = no_target[h] = True
            guests = [g for g in view.lists[h] if not view.in_migration[g]]
            placed: list[tuple[int, int]] = []
            for g in sorted(guests, key=lambda g: -view.requested[g]):
                dst = view.find_host(g, no_target, self.detector)
                if dst is None:
                    for g2, d2 in placed:
                        view.destroy(g2, d2)
                    placed = []
                    break
                view.create(g, dst)
                placed.append((g, dst))
            for _, d in placed:
                no_source[d] = True
            moves += placed
        return moves
