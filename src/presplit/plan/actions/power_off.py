"""PowerOff: switch off an empty host that is not being patched."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from presplit.plan.actions.base import Action, Cost, Touch, Verdict, _check, _set, record, register, undo_via


@register
@dataclass(frozen=True)
class PowerOff(Action):
    host: int

    reversible: ClassVar[bool] = True

    def apply(self, state):
        h = int(self.host)
        _check(0 <= h < state.n_hosts and state.host_on[h], f"host {h} is not powered on")
        ids = [d.id for d in state.domains_of(h)]
        busy = np.isin(state.guest_domain, ids) | np.isin(state.guest_dest, ids)
        _check(not busy.any(), f"host {h} still has {int(busy.sum())} guests")
        _check(all(d.state != "patching" for d in state.domains_of(h)), f"host {h} is being patched")
        return state.evolve(host_on=_set(state.host_on, h, False)), Cost(), (), {}

    def capture(self, state):
        return record(state, host=self.host)

    def postcondition(self, state, before):
        if not state.host_on[self.host]:
            return Verdict.DONE, f"host {self.host} off"
        return Verdict.NOT_RUN, f"host {self.host} on"

    def revert(self, state, before):
        from presplit.plan.actions.power_on import PowerOn  # imported here: the two kinds undo each other

        if state.host_on[self.host]:
            return state, True, "host already on"
        return undo_via(state, PowerOn(self.host, reason="revert of PowerOff"))

    def touches(self, state, next_domain):
        return Touch(excl_hosts={self.host}, hosts=(self.host,))  # later moves on the host wait for it
