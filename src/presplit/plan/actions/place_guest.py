"""PlaceGuest: start an arrived (pending) guest in a domain."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from presplit.model.domains import PENDING, RUNNING
from presplit.plan.actions.base import (
    Action, Cost, Touch, _arrived, _fits, _guest, _host_of, _on, _set, _shift_reserved, _usable, record, register,
)


@register
@dataclass(frozen=True)
class PlaceGuest(Action):
    """Start an arrived (pending) guest in a domain."""

    guest: int
    domain: int

    reversible: ClassVar[bool] = True

    def apply(self, state):
        g = _guest(state, self.guest, PENDING, "pending")
        dst = _usable(state, self.domain)
        _fits(state, g, dst.id)
        out = state.evolve(guest_domain=_set(state.guest_domain, g, dst.id),
                           guest_status=_set(state.guest_status, g, RUNNING))
        return _shift_reserved(state, out, g, -1, dst.id), Cost(), (g,), {"domain": dst.id}

    def capture(self, state):
        return record(state, guest=self.guest, domains=(("domain", self.domain),))

    def postcondition(self, state, before):
        return _arrived(state, self.guest, self.domain, before)

    def revert(self, state, before):
        """Stop the guest: pending again, unplaced."""
        g = self.guest
        if int(state.guest_domain[g]) == self.domain and int(state.guest_status[g]) == RUNNING:
            return state.evolve(guest_domain=_set(state.guest_domain, g, -1),
                                guest_status=_set(state.guest_status, g, PENDING)), True, "guest stopped, pending again"
        return state, True, "guest not placed there: nothing to undo"

    def touches(self, state, next_domain):
        return Touch(guests={self.guest}, uses={self.domain}, hosts=_on(_host_of(state, self.domain)))
