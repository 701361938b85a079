"""PowerOn: switch a host on; it is ready after its boot delay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from presplit.plan.actions.base import Action, Cost, Touch, Verdict, _check, _set, record, register, undo_via


@register
@dataclass(frozen=True)
class PowerOn(Action):
    host: int

    reversible: ClassVar[bool] = True

    def apply(self, state):
        h = int(self.host)
        _check(0 <= h < state.n_hosts and not state.host_on[h], f"host {h} is not a switched-off host")
        spec = state.hosts[h]
        out = state.evolve(host_on=_set(state.host_on, h, True),
                           host_ready_at=_set(state.host_ready_at, h, state.now + spec.boot_delay_s))
        return out, Cost(spec.boot_delay_s, 0.0, 0.0, spec.power.idle_w * spec.boot_delay_s), (), {
            "ready_at": state.now + spec.boot_delay_s}

    def capture(self, state):
        return record(state, host=self.host)

    def postcondition(self, state, before):
        if state.host_ready(self.host):
            return Verdict.DONE, f"host {self.host} ready"
        if state.host_on[self.host]:
            return Verdict.PENDING, f"host {self.host} booting"
        return Verdict.NOT_RUN, f"host {self.host} off"

    def revert(self, state, before):
        from presplit.plan.actions.power_off import PowerOff  # imported here: the two kinds undo each other

        if not state.host_on[self.host]:
            return state, True, "host already off"
        return undo_via(state, PowerOff(self.host, reason="revert of PowerOn"))

    def touches(self, state, next_domain):
        return Touch(excl_hosts={self.host}, hosts=(self.host,))  # later moves on the host wait for it
