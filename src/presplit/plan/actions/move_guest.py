"""MoveGuest: re-pin a running guest to a sibling domain of its host (no copy, no downtime)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from presplit.model.domains import RUNNING
from presplit.plan.actions.base import (
    Action, Cost, Touch, _arrived, _check, _fits, _guest, _holds, _host_of, _move_back, _set, _shift_reserved,
    _source, _usable, record, register,
)


@register
@dataclass(frozen=True)
class MoveGuest(Action):
    """Re-pin a guest to a sibling domain of the same host: no memory copy, no downtime.

    ``carry_mips`` / ``carry_mb`` move that much allotment from the source domain
    to the destination together with the guest (its CPU share and memory follow
    it), so a full sibling can take it; the source must still hold what stays.
    """

    guest: int
    to_domain: int
    carry_mips: float = 0.0
    carry_mb: float = 0.0

    reversible: ClassVar[bool] = True

    def apply(self, state):
        g = _guest(state, self.guest, RUNNING, "running")
        src = state.domains[int(state.guest_domain[g])]
        dst = _usable(state, self.to_domain)
        _check(dst.host == src.host and dst.id != src.id, "MoveGuest is for a sibling domain of the same host")
        cpu, mem = float(self.carry_mips), float(self.carry_mb)
        _check(cpu >= 0 and mem >= 0, "carried allotment must be >= 0")
        moved = _shift_reserved(state, state.evolve(guest_domain=_set(state.guest_domain, g, dst.id)),
                                g, src.id, dst.id)
        if cpu or mem:
            _check(src.state != "patching", f"domain {src.id} is being patched")
            new_src = replace(src, cpu_mips=src.cpu_mips - cpu, mem_mb=src.mem_mb - mem)
            new_dst = replace(dst, cpu_mips=dst.cpu_mips + cpu, mem_mb=dst.mem_mb + mem)
            reserved = moved.reserved
            moved = moved.with_domain(new_src, new_dst)
            moved.__dict__["reserved"] = reserved  # allotments changed, reservations did not
            _holds(moved, new_src, new_src.cpu_mips, new_src.mem_mb, new_src.services)
            _holds(moved, new_dst, new_dst.cpu_mips, new_dst.mem_mb, new_dst.services)
        else:
            _fits(state, g, dst.id)
        return moved, Cost(seconds=state.model.repin_s), (g,), {"from": src.id, "to": dst.id,
                                                                "carried": (cpu, mem)}

    def capture(self, state):
        return record(state, guest=self.guest)

    def postcondition(self, state, before):
        return _arrived(state, self.guest, self.to_domain, before)

    def revert(self, state, before):
        return _move_back(state, self, before)

    def touches(self, state, next_domain):
        src = _source(state, self.guest)
        hs = tuple(h for h in (_host_of(state, src) if src is not None else None, _host_of(state, self.to_domain))
                   if h is not None)
        return Touch(guests={self.guest}, uses={self.to_domain},
                     frees={src} if src is not None and src >= 0 else set(), hosts=hs)
