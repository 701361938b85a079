"""ResizeGuest: change a running guest's reservation in its domain (vertical right-sizing).

What Kubernetes' in-place pod resize and VMware's hot-add / hot-remove do: the
guest stays where it is and keeps running; what it reserves in its domain
(``cpu_mips``, ``mem_mb``: the row of ``ClusterState.guest_reserve`` that
placement books) changes. Memory is not overcommitted in this model, so the
memory reservation is the guest's RAM (``Guest.ram_mb``): a later migration
copies the new size.

Preconditions: the guest is running (not migrating, not down); a growth fits
in the domain's free room; the CPU reservation stays within what the guest's
vCPUs can use; the memory reservation stays at or above what the guest uses
now (``demand_mem_mb``, when the state knows it: zero means unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from presplit.model.domains import RUNNING
from presplit.plan.actions.base import (
    EPS, Action, Cost, Touch, Verdict, _check, _guest, _host_of, _on, _source, record, register, undo_via,
)


@register
@dataclass(frozen=True)
class ResizeGuest(Action):
    """Set guest ``guest``'s reservation to ``cpu_mips`` MIPS and ``mem_mb`` MB, in the domain it runs in."""

    guest: int
    cpu_mips: float
    mem_mb: float

    reversible: ClassVar[bool] = True

    def apply(self, state):
        g = _guest(state, self.guest, RUNNING, "running")
        d = int(state.guest_domain[g])
        spec = state.guests[g]
        cpu, mem = float(self.cpu_mips), float(self.mem_mb)
        _check(cpu > 0 and mem > 0, f"a reservation must be positive, got {cpu:g} MIPS / {mem:g} MB")
        _check(cpu <= spec.mips + EPS, f"guest {g} can use at most {spec.mips:.0f} MIPS ({spec.vcpus} vCPUs), "
                                       f"not reserve {cpu:.0f}")
        using = float(state.demand_mem_mb[g])
        _check(mem >= using - EPS, f"guest {g} uses {using:.0f} MB now, more than {mem:.0f} MB")
        was = state.guest_reserve[g].copy()
        grow = (cpu - was[0], mem - was[1])
        free_mips, free_mb = state.free(d)
        _check(grow[0] <= free_mips + EPS and grow[1] <= free_mb + EPS,
               f"guest {g} grows by {max(grow[0], 0.0):.0f} MIPS / {max(grow[1], 0.0):.0f} MB, domain {d} has "
               f"{free_mips:.0f} MIPS / {free_mb:.0f} MB free")
        guests = list(state.guests)
        guests[g] = replace(spec, reserve_mips=cpu, ram_mb=mem)
        out = state.evolve(guests=tuple(guests))
        # A new guest tuple drops every cache built from it; hand the new state the two tables that
        # changed by one row each (rebuilding them is a pass over the whole fleet) and the ones that did not.
        reserve = state.guest_reserve.copy()
        reserve[g] = (cpu, mem)
        table = state.reserved.copy()
        table[d] += (grow[0], grow[1])
        out.__dict__.update(guest_reserve=reserve, reserved=table)
        for name in ("guest_mips", "_guest_ids"):  # a guest's vCPUs and id do not change
            if name in state.__dict__:
                out.__dict__[name] = state.__dict__[name]
        return out, Cost(seconds=state.model.repin_s), (g,), {
            "domain": d, "was": (float(was[0]), float(was[1])), "delta": grow}

    def capture(self, state):
        before = record(state, guest=self.guest)
        if 0 <= self.guest < state.n_guests:
            before["guest_reserve"] = [float(x) for x in state.guest_reserve[self.guest]]
        return before

    def postcondition(self, state, before):
        g = self.guest
        cpu, mem = (float(x) for x in state.guest_reserve[g])
        if abs(cpu - self.cpu_mips) < 1e-6 and abs(mem - self.mem_mb) < 1e-6:
            return Verdict.DONE, f"guest {g} reserves {cpu:g} MIPS / {mem:g} MB"
        if [cpu, mem] == before.get("guest_reserve"):
            return Verdict.NOT_RUN, f"guest {g}'s reservation unchanged"
        return Verdict.FAILED, f"guest {g} reserves {cpu:g} MIPS / {mem:g} MB, expected {self.cpu_mips:g} / " \
                               f"{self.mem_mb:g}"

    def revert(self, state, before):
        """Resize back to the recorded reservation, if the guest still has the one this action set."""
        was = before.get("guest_reserve")
        if was is None:
            return state, False, "no reservation recorded before the resize"
        now = state.guest_reserve[self.guest]
        if abs(now[0] - self.cpu_mips) > 1e-6 or abs(now[1] - self.mem_mb) > 1e-6:
            return state, True, "reservation not as this resize set it: nothing to undo"
        return undo_via(state, ResizeGuest(self.guest, was[0], was[1], reason="revert of ResizeGuest"))

    def touches(self, state, next_domain):
        d = _source(state, self.guest)
        if d is None or d < 0:
            return Touch(guests={self.guest})
        was = state.guest_reserve[self.guest]
        # growing takes room in the domain (waits for what frees it); shrinking frees room
        uses = {d} if self.cpu_mips > was[0] or self.mem_mb > was[1] else set()
        frees = {d} if self.cpu_mips < was[0] or self.mem_mb < was[1] else set()
        return Touch(guests={self.guest}, uses=uses, frees=frees, hosts=_on(_host_of(state, d)))
