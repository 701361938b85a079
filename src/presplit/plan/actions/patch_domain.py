"""PatchDomain: take a domain's services down for a patch (not reversible)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from presplit.model.domains import DOWN, RUNNING
from presplit.plan.actions.base import (
    Action, Cost, Touch, Verdict, _check, _domain, _finite, _host_of, _no_flights, _on, _set, record, register,
)


@register
@dataclass(frozen=True)
class PatchDomain(Action):
    """Patch a domain: its services are down for ``duration_s``; guests still inside go down too."""

    domain: int
    duration_s: float | None = None  # None: the model's patch_duration_s

    def apply(self, state):
        dom = _domain(state, self.domain)
        _check(dom.state in ("active", "draining") and dom.ready_at <= state.now, f"domain {dom.id} is {dom.state}")
        _check(state.host_ready(dom.host), f"host {dom.host} is off or booting")
        _no_flights(state, dom.id)
        dur = state.model.patch_duration_s if self.duration_s is None else float(self.duration_s)
        _check(dur > 0, "patch duration must be positive")
        inside = np.flatnonzero((state.guest_domain == dom.id) & (state.guest_status == RUNNING))
        now = state.now
        out = state.with_domain(replace(dom, state="patching", patch_started=now, patch_until=now + dur)).evolve(
            guest_status=_set(state.guest_status, inside, DOWN),
            guest_down_start=_set(state.guest_down_start, inside, now),
            guest_down_end=_set(state.guest_down_end, inside, now + dur))
        return out, Cost(dur, dur * len(inside)), inside, {"guests_down": len(inside), "until": now + dur}

    def capture(self, state):
        return record(state, domains=(("domain", self.domain),))

    def postcondition(self, state, before):
        dom = state.domains[self.domain]
        if _finite(dom.patch_started) == before.get("domain_patch_started"):
            return Verdict.NOT_RUN, "not patched"
        if dom.state == "patching":
            return Verdict.PENDING, f"patching until {dom.patch_until:g}"
        return (Verdict.DONE, "patched") if dom.live else (Verdict.FAILED, f"domain {self.domain} is {dom.state}")

    def touches(self, state, next_domain):
        return Touch(excl_domains={self.domain}, hosts=_on(_host_of(state, self.domain)))
