"""A what-if copy of the placement that policies try moves on (CloudSim's vmCreate/vmDestroy).

CloudSim's policies allocate and deallocate guests on the real hosts while they
search, then restore the saved allocation. Here the search works on this view
instead, so the engine's state is never touched until the policy returns its
moves. Per-host sums are recomputed from the host's guest list, in list order,
after every change, exactly as the C step kernel (``_placement.c``) does, so
the two give the same moves bit for bit: this view is the readable reference
the kernel is tested against, and the path for selectors the kernel lacks (MC).
The placement scan itself is the kernel's ``find_host`` in both.
"""

from __future__ import annotations

import math

import numpy as np

from presplit.model.hardware import power_at
from presplit.policies.cloudsim import kernel


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
        self.util_stale = kernel.stale_utilisation(e)
        self.power_now = power_at(e.h_power, self.util_stale)
        self.h_power = e.h_power
        self.mig_mbps = e.h_mbps
        self.host_type = np.ascontiguousarray(e.fleet.host_type_of, dtype=np.int64)
        self.interval_s = m.interval_s
        # Guest utilisation history, newest first, and in host-MIPS units per guest.
        self.history_len = e.history_len
        self.g_hist_mips = np.ascontiguousarray(e.history * e.g_mips[:, None])
        nz = e.history != 0
        self.g_hist_len = np.where(nz.any(axis=1), e.history.shape[1] - np.argmax(nz[:, ::-1], axis=1), 0)
        self.enforce_ram = m.enforce_ram or e.now == 0.0
        # What overload detectors count as a guest's request. At start-up
        # CloudSim's guests that are already created request nothing (their
        # workload has not been submitted yet); only the guest being placed
        # asks for its full MIPS.
        self.detect_requested = e.requested if e.now > 0.0 else np.zeros_like(e.requested)
        # Python lists for the scalar arithmetic of recompute(): faster than numpy scalars.
        self._r = e.requested.tolist()
        self._detect = self.detect_requested.tolist()
        self._hist_len = self.g_hist_len.tolist()
        self._ram = e.g_ram.tolist()
        self.ram_free = e.ram_free.copy()
        self.count = np.array([len(lst) for lst in self.lists], dtype=np.int64)
        self.need = np.zeros(n)
        self.alloc = np.zeros(n)
        self.avail = e.h_total.copy()
        self.req = np.zeros(n)
        self.hist = np.zeros((n, e.history.shape[1]))
        self.hist_len = np.zeros(n, dtype=np.int64)
        self.max_ram = np.zeros(n)
        for h in np.flatnonzero(self.count):
            self.recompute(int(h))
        self._struct = self._bind()
        self._g_hist_addr = self.g_hist_mips.ctypes.data
        self._g_hist_stride = self.g_hist_mips.strides[0]
        self._detector = None

    def _bind(self):
        return kernel.ViewStruct(
            len(self.total), self.hist.shape[1],
            kernel.ptr(self.pe, kernel._dbl), kernel.ptr(self.avail, kernel._dbl),
            kernel.ptr(self.ram_free, kernel._dbl), kernel.ptr(self.alloc, kernel._dbl),
            kernel.ptr(self.total, kernel._dbl), kernel.ptr(self.req, kernel._dbl),
            kernel.ptr(self.power_now, kernel._dbl), kernel.ptr(self.h_power, kernel._dbl),
            kernel.ptr(self.hist, kernel._dbl), kernel.ptr(self.hist_len, kernel._i64),
            kernel.ptr(self.max_ram, kernel._dbl), kernel.ptr(self.mig_mbps, kernel._dbl),
            kernel.ptr(self.host_type, kernel._i64), int(self.host_type.max()) + 1,
            self.interval_s, int(self.enforce_ram), 0, 0.0)

    # ------------------------------------------------------------ mutation
    def recompute(self, h: int) -> None:
        """Recompute host h's sums from its guest list, in list order as CloudSim does."""
        vms = self.lists[h]
        total, pe = float(self.total[h]), float(self.pe[h])
        incoming = self.incoming_at.get(h, ())
        r = self._r
        keep, reserve = self.keep, self.reserve
        if not incoming and not any(self.in_migration[g] for g in vms):
            caps = [min(r[g], pe) for g in vms]
            need = sum(caps)
            if need <= total:
                alloc, avail = need, total - need
            else:
                f = total / need
                alloc, avail = float(sum(math.floor(c * f) for c in caps)), 0.0
        else:
            need = sum(min(r[g], pe) * (reserve if g in incoming else 1.0) for g in vms)
            over = need > total
            f = total / need if over else 1.0
            alloc = 0.0
            for g in vms:
                c = min(r[g], pe)
                if g in incoming:
                    # A migrating-in guest counts at its full potential (CloudSim adds 9x its 10 %).
                    a = c * reserve * f
                    alloc += (math.floor(a) if over else a) / reserve
                else:
                    a = c * f * keep if self.in_migration[g] else c * f
                    alloc += math.floor(a) if over else a
            avail = 0.0 if over else total - need
        self.need[h] = need
        self.alloc[h] = alloc
        self.avail[h] = avail
        self.req[h] = sum(self._detect[g] for g in vms)
        if vms:
            self.hist[h] = self.g_hist_mips[vms].sum(axis=0) / total
            self.hist_len[h] = max(self._hist_len[g] for g in vms)
            self.max_ram[h] = max(self._ram[g] for g in vms)
        else:
            self.hist[h] = 0.0
            self.hist_len[h] = 0
            self.max_ram[h] = 0.0

    def create(self, guest: int, host: int) -> None:
        """Add a guest at the end of a host's list (CloudSim's vmCreate)."""
        self.lists[host].append(guest)
        self.count[host] += 1
        if self.enforce_ram:
            self.ram_free[host] -= self.g_ram[guest]
        self.recompute(host)

    def destroy(self, guest: int, host: int) -> None:
        """Remove a guest from a host's list (CloudSim's vmDestroy)."""
        self.lists[host].remove(guest)
        self.count[host] -= 1
        if self.enforce_ram:
            self.ram_free[host] += self.g_ram[guest]
        self.recompute(host)

    # --------------------------------------------------------------- search
    def find_host(self, guest: int, excluded: np.ndarray, detector) -> int | None:
        """PABFD: the allowed host whose power rises least when the guest is added.

        A host is allowed when it is not excluded, one PE and its free MIPS fit
        the request (and RAM, when enforced), and, if it already runs guests,
        the detector does not call it overloaded with the guest added. The scan
        runs in the C kernel; ``detectors.py`` states the same rules in NumPy.
        """
        self._use(detector)
        if excluded.dtype != np.bool_ or len(excluded) != len(self.total):
            raise TypeError("excluded must be a boolean mask over hosts")
        h = kernel.LIB.find_host(
            self._struct, excluded.ctypes.data, self._r[guest], self._r[guest],
            self._g_hist_addr + guest * self._g_hist_stride, self._hist_len[guest], self._ram[guest])
        return None if h < 0 else int(h)

    def overloaded(self, hosts: np.ndarray, detector) -> np.ndarray:
        """The detector's verdict on hosts as they are now (the C kernel's arithmetic)."""
        self._use(detector)
        hosts = np.ascontiguousarray(hosts, dtype=np.int64)
        out = np.zeros(len(hosts), dtype=np.uint8)
        kernel.LIB.overloaded_hosts(self._struct, kernel.ptr(hosts, kernel._i64), len(hosts),
                                    kernel.ptr(out, kernel._u8))
        return out.astype(bool)

    def _use(self, detector) -> None:
        if detector is not self._detector:
            self._struct.detector, self._struct.param = kernel.detector_code(detector)
            self._detector = detector
