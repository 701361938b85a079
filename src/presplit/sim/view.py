"""A what-if copy of the placement that policies try moves on (CloudSim's vmCreate/vmDestroy).

CloudSim's policies allocate and deallocate guests on the real hosts while they
search, then restore the saved allocation. Here the search works on this view
instead, so the engine's state is never touched until the policy returns its
moves. Per-host sums are recomputed from the host's guest list after every
change (lists are short), and kept in arrays so that a placement search scans
every host with array operations.
"""

from __future__ import annotations

import math

import numpy as np

from presplit.sim.metrics import power_at


class AllocationView:
    def __init__(self, engine) -> None:
        e = engine
        self.engine = e
        m = e.model
        self.keep = 1.0 - m.source_degradation
        self.reserve = m.destination_reservation
        self.lists = [list(lst) for lst in e.lists]
        self.total = e.h_total
        self.pe = e.h_pe
        self.requested = e.requested
        self.g_mips = e.g_mips
        self.g_ram = e.g_ram
        self.in_migration = e.in_migration
        self.incoming_at: dict[int, set[int]] = {}
        for g, h in e.incoming:
            self.incoming_at.setdefault(h, set()).add(g)
        n = e.n_hosts
        # Host utilisation as of the last update: what "switched off" and the
        # power before an allocation are judged on, as in CloudSim.
        util = e.h_util_mips / e.h_total
        self.util_stale = np.where((util > 1.0) & (util < 1.01), 1.0, util)
        self.power_now = power_at(e.h_power, self.util_stale)
        self.h_power = e.h_power
        self.mig_mbps = e.h_mbps
        self.interval_s = m.interval_s
        # Guest utilisation history, newest first, and in host-MIPS units per guest.
        self.history_len = e.history_len
        self.g_hist_mips = e.history * e.g_mips[:, None]
        nz = e.history != 0
        last = np.where(nz.any(axis=1), e.history.shape[1] - np.argmax(nz[:, ::-1], axis=1), 0)
        self.g_hist_len = last
        self.enforce_ram = m.enforce_ram or e.now == 0.0
        # What overload detectors count as a guest's request. At start-up
        # CloudSim's guests that are already created request nothing (their
        # workload has not been submitted yet); only the guest being placed
        # asks for its full MIPS.
        self.detect_requested = e.requested if e.now > 0.0 else np.zeros_like(e.requested)
        self.ram_free = e.ram_free.copy()
        self.max_ram = np.zeros(n)
        self.need = np.zeros(n)
        self.alloc = np.zeros(n)
        self.avail = e.h_total.copy()
        self.req = np.zeros(n)
        self.hist = np.zeros((n, e.history.shape[1]))
        self.hist_len = np.zeros(n, dtype=np.int64)
        for h in range(n):
            if self.lists[h]:
                self.recompute(h)

    # ------------------------------------------------------------ mutation
    def recompute(self, h: int) -> None:
        vms = self.lists[h]
        total, pe = self.total[h], self.pe[h]
        incoming = self.incoming_at.get(h, ())
        r = self.requested
        need = 0.0
        for g in vms:
            c = min(r[g], pe)
            need += c * self.reserve if g in incoming else c
        alloc = 0.0
        if need <= total:
            for g in vms:
                c = min(r[g], pe)
                if g in incoming:
                    alloc += c * self.reserve / self.reserve  # counted at full potential
                else:
                    alloc += c * self.keep if self.in_migration[g] else c
            avail = total - need
        else:
            f = total / need
            for g in vms:
                c = min(r[g], pe)
                if g in incoming:
                    alloc += math.floor(c * self.reserve * f) / self.reserve
                else:
                    alloc += math.floor(c * f * self.keep) if self.in_migration[g] else math.floor(c * f)
            avail = 0.0
        self.need[h] = need
        self.alloc[h] = alloc
        self.avail[h] = avail
        self.req[h] = sum(self.detect_requested[g] for g in vms)
        if vms:
            self.hist[h] = self.g_hist_mips[vms].sum(axis=0) / total
            self.hist_len[h] = max(self.g_hist_len[g] for g in vms)
            self.max_ram[h] = max(self.g_ram[g] for g in vms)
        else:
            self.hist[h] = 0.0
            self.hist_len[h] = 0
            self.max_ram[h] = 0.0

    def create(self, guest: int, host: int) -> None:
        self.lists[host].append(guest)
        if self.enforce_ram:
            self.ram_free[host] -= self.g_ram[guest]
        self.recompute(host)

    def destroy(self, guest: int, host: int) -> None:
        self.lists[host].remove(guest)
        if self.enforce_ram:
            self.ram_free[host] += self.g_ram[guest]
        self.recompute(host)

    # --------------------------------------------------------------- search
    def find_host(self, guest: int, excluded: np.ndarray, detector) -> int | None:
        """PABFD: the allowed host whose power rises least when the guest is added.

        A host is allowed when it is not excluded, one PE and its free MIPS fit
        the request (and RAM, when enforced), and, if it already runs guests,
        the detector does not call it overloaded with the guest added.
        """
        r = self.requested[guest]
        ok = ~excluded & (self.pe >= r) & (self.avail >= r)
        if self.enforce_ram:
            ok &= self.ram_free >= self.g_ram[guest]
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            return None
        busy = self.alloc[cand] != 0
        if busy.any():
            over = detector.overloaded(self, cand[busy], guest)
            if over.any():
                drop = np.zeros(len(cand), dtype=bool)
                drop[np.flatnonzero(busy)[over]] = True
                cand = cand[~drop]
                if len(cand) == 0:
                    return None
        after = np.minimum((self.alloc[cand] + r) / self.total[cand], 1.0)
        rise = power_at(self.h_power[cand], after) - self.power_now[cand]
        return int(cand[np.argmin(rise)])
