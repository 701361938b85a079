"""RestartGuest: boot again, in a usable domain, a guest a failure stopped."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from presplit.model.domains import DOWN, MIGRATING, RUNNING
from presplit.plan.actions.base import (
    Action, Cost, Touch, Verdict, _check, _fits, _guest, _host_of, _on, _set, _shift_reserved, _source, _status,
    _usable, record, register,
)


@register
@dataclass(frozen=True)
class RestartGuest(Action):
    """Restart a guest a failure stopped (its host or its domain's services crashed) in a usable domain.

    The guest is down from the failure until it has booted in ``to_domain``
    (the model's ``guest_boot_s`` after the restart); ``to_domain`` may be the
    domain it failed in, once that domain runs again. The reservation moves with it.
    """

    guest: int
    to_domain: int

    reversible: ClassVar[bool] = True

    def apply(self, state):
        g = _guest(state, self.guest, DOWN, "down")
        _check(bool(np.isinf(state.guest_down_end[g])),
               f"guest {g} is down for a patch or already restarting, not stopped by a failure")
        src = int(state.guest_domain[g])
        dst = _usable(state, self.to_domain)
        if dst.id != src:
            _fits(state, g, dst.id)
        now, boot = state.now, float(state.model.guest_boot_s)
        changes = {"guest_status": _set(state.guest_status, g, DOWN if boot > 0 else RUNNING),
                   "guest_down_end": _set(state.guest_down_end, g, now + boot)}
        if dst.id != src:
            changes["guest_domain"] = _set(state.guest_domain, g, dst.id)
        out = state.evolve(**changes)
        if dst.id != src:
            out = _shift_reserved(state, out, g, src, dst.id)
        return out, Cost(seconds=boot, downtime_s=boot), (g,), {
            "from": src, "to": dst.id, "failed_at": float(state.guest_down_start[g]), "up_at": now + boot}

    def capture(self, state):
        return record(state, guest=self.guest)

    def postcondition(self, state, before):
        g, want = self.guest, self.to_domain
        dom, st = int(state.guest_domain[g]), int(state.guest_status[g])
        stopped = st == DOWN and math.isinf(float(state.guest_down_end[g]))
        if dom == want and st in (RUNNING, MIGRATING):
            return Verdict.DONE, f"guest {g} runs again in domain {want}"
        if dom == want and st == DOWN and not stopped:
            return Verdict.PENDING, f"guest {g} booting in domain {want} until t={float(state.guest_down_end[g]):g}"
        if dom == before.get("guest_domain") and st == before.get("guest_status") and stopped:
            return Verdict.NOT_RUN, f"guest {g} still stopped in domain {dom}"
        return Verdict.FAILED, (f"guest {g} is in domain {dom} ({_status(st)}), expected domain {want} "
                                "booting or running")

    def revert(self, state, before):
        """Stop the restarted guest again, back in the domain it failed in (booked there, down with no end)."""
        g, src = self.guest, before.get("guest_domain", -1)
        dom, st = int(state.guest_domain[g]), int(state.guest_status[g])
        restarted = dom == self.to_domain and (
            st == RUNNING or (st == DOWN and not math.isinf(float(state.guest_down_end[g]))))
        if not restarted or before.get("guest_status") != DOWN or src is None or src < 0:
            return state, True, "guest not restarted there: nothing to undo"
        if src != dom:
            need = state.guest_reserve[g]
            free = state.free(src) if state.domains[src].live else (-1.0, -1.0)
            if need[0] > free[0] + 1e-6 or need[1] > free[1] + 1e-6:
                return state, False, f"domain {src} has no room to take guest {g} back: it stays where it restarted"
        table = state.reserved.copy()
        table[dom] -= state.guest_reserve[g]
        table[src] += state.guest_reserve[g]
        out = state.evolve(guest_domain=_set(state.guest_domain, g, src),
                           guest_status=_set(state.guest_status, g, DOWN),
                           guest_down_end=_set(state.guest_down_end, g, math.inf))
        out.__dict__["reserved"] = table
        return out, True, f"guest {g} stopped again in domain {src}"

    def touches(self, state, next_domain):
        # takes room where it restarts, frees the domain it failed in
        src = _source(state, self.guest)
        frees = {src} if src is not None and src >= 0 and src != self.to_domain else set()
        return Touch(guests={self.guest}, uses={self.to_domain}, frees=frees,
                     hosts=_on(_host_of(state, self.to_domain)))
