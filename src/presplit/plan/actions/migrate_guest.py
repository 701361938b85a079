"""MigrateGuest: live-migrate a running guest to a domain of another host (pre-copy over the fabric).

The cost model of a live migration lives here too: :func:`precopy`, and the
energy of moving the bytes (``MIGRATION_J_PER_MB``, ``MIGRATION_J_FIXED``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from presplit.model.domains import MIGRATING, RUNNING
from presplit.plan.actions.base import (
    Action, Cost, Refused, Touch, _arrived, _check, _fits, _guest, _host_of, _move_back, _set, _shift_reserved,
    _source, _usable, record, register,
)

# Energy of one live migration, Liu et al., "Performance and energy modeling for
# live migration of virtual machines", HPDC 2011: E = 0.512 J/MB x data + 20.165 J.
MIGRATION_J_PER_MB, MIGRATION_J_FIXED = 0.512, 20.165


@dataclass(frozen=True)
class PreCopy:
    duration_s: float
    downtime_s: float
    mb: float
    rounds: int


def precopy(ram_mb: float, dirty_mbps: float, path_mb_s: float, *, max_downtime_s: float = 0.3,
            max_rounds: int = 30, switchover_s: float = 0.0) -> PreCopy:
    """Iterative pre-copy live migration (Clark et al., "Live Migration of Virtual Machines", NSDI 2005;
    the algorithm of QEMU's RAM migration): round 0 copies all RAM at ``path_mb_s``; each further
    round copies what was dirtied during the previous one (``dirty_mbps`` megabits/s, at most the
    whole RAM). When the dirty set left could be sent within ``max_downtime_s`` -- or after
    ``max_rounds`` rounds, when a guest dirties faster than the link copies -- the guest is paused
    and the rest sent (stop-and-copy): that time plus ``switchover_s`` (device
    state and hand-over) is the downtime.
    """
    if path_mb_s <= 0:
        raise ValueError("path bandwidth must be positive")
    dirty_mb_s = dirty_mbps / 8.0
    to_send, total_mb, elapsed, rounds = ram_mb, 0.0, 0.0, 0
    while True:
        t = to_send / path_mb_s
        total_mb += to_send
        elapsed += t
        rounds += 1
        dirtied = min(ram_mb, dirty_mb_s * t)
        if dirtied / path_mb_s <= max_downtime_s or rounds >= max_rounds:
            down = dirtied / path_mb_s + switchover_s
            return PreCopy(elapsed + down, down, total_mb + dirtied, rounds)
        to_send = dirtied


@register
@dataclass(frozen=True)
class MigrateGuest(Action):
    """Live-migrate a guest to a domain of another host (pre-copy over the fabric).

    ``max_downtime_s`` is the stop-and-copy pause this migration may take
    (QEMU's ``downtime-limit``); None: the model's. A smaller limit buys a
    shorter pause with more pre-copy rounds (bounded by the model's ``max_rounds``).
    """

    guest: int
    to_domain: int
    max_downtime_s: float | None = None

    reversible: ClassVar[bool] = True

    def apply(self, state):
        g = _guest(state, self.guest, RUNNING, "running")
        src = state.domains[int(state.guest_domain[g])]
        dst = _usable(state, self.to_domain)
        _check(dst.host != src.host, "MigrateGuest is for another host; use MoveGuest for a sibling domain")
        _fits(state, g, dst.id)
        m, spec = state.model, state.guests[g]
        try:
            path = state.fabric.path(src.host, dst.host)
        except ValueError:  # a failed link the fabric cannot route around (presplit.plan.failures)
            raise Refused(f"no fabric path from host {src.host} to host {dst.host}") from None
        share = float(min(state.host_mig_share[src.host], state.host_mig_share[dst.host]))
        limit = m.max_downtime_s if self.max_downtime_s is None else float(self.max_downtime_s)
        _check(limit > 0, f"max_downtime_s must be positive, got {limit:g}")
        pc = precopy(spec.ram_mb, spec.dirty_rate_mbps, path.mb_per_s * share,
                     max_downtime_s=limit, max_rounds=m.max_rounds, switchover_s=m.switchover_s)
        now, end = state.now, state.now + pc.duration_s
        out = state.evolve(guest_dest=_set(state.guest_dest, g, dst.id),
                           guest_status=_set(state.guest_status, g, MIGRATING),
                           guest_mig_start=_set(state.guest_mig_start, g, now),
                           guest_mig_end=_set(state.guest_mig_end, g, end),
                           guest_down_start=_set(state.guest_down_start, g, end - pc.downtime_s),
                           guest_down_end=_set(state.guest_down_end, g, end))
        out = _shift_reserved(state, out, g, -1, dst.id)  # the destination books the guest while it copies in
        cost = Cost(pc.duration_s, pc.downtime_s, pc.mb / 1000.0, MIGRATION_J_PER_MB * pc.mb + MIGRATION_J_FIXED)
        return out, cost, (g,), {"from": src.id, "to": dst.id, "path_gbit": path.gbit, "share": share,
                                 "rounds": pc.rounds, "mb": pc.mb}

    def capture(self, state):
        return record(state, guest=self.guest)

    def postcondition(self, state, before):
        return _arrived(state, self.guest, self.to_domain, before, in_flight=True)

    def revert(self, state, before):
        """A migration still copying is cancelled (QEMU's ``migrate_cancel``); one that landed migrates back."""
        g = self.guest
        if int(state.guest_status[g]) == MIGRATING and int(state.guest_dest[g]) == self.to_domain:
            now = state.now
            return state.evolve(guest_dest=_set(state.guest_dest, g, -1),
                                guest_status=_set(state.guest_status, g, RUNNING),
                                guest_mig_end=_set(state.guest_mig_end, g, now),
                                guest_down_start=_set(state.guest_down_start, g, now),
                                guest_down_end=_set(state.guest_down_end, g, now)), True, "migration cancelled"
        return _move_back(state, self, before)

    def touches(self, state, next_domain):
        src = _source(state, self.guest)
        hs = tuple(h for h in (_host_of(state, src) if src is not None else None, _host_of(state, self.to_domain))
                   if h is not None)
        link = None
        if len(hs) == 2:
            # the racks' uplinks are the shared, oversubscribed part of the fabric; inside a rack, the host pair
            ra, rb = state.hosts[hs[0]].rack, state.hosts[hs[1]].rack
            link = ("racks", *sorted((ra, rb))) if ra != rb else ("hosts", *sorted(hs))
        return Touch(guests={self.guest}, uses={self.to_domain},
                     frees={src} if src is not None and src >= 0 else set(), hosts=hs, link=link)
