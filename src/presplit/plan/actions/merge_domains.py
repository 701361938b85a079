"""MergeDomains: recombine domains of one host into the first (not reversible)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from presplit.plan.actions.base import (
    Action, Cost, Touch, Verdict, _check, _domain, _host_of, _no_flights, _on, _set, register,
)


@register
@dataclass(frozen=True)
class MergeDomains(Action):
    """Merge ``domains`` (same host) into the first; its guests are re-pinned, the others become ``merged``."""

    domains: tuple[int, ...]

    def apply(self, state):
        ids = [int(d) for d in self.domains]
        _check(len(ids) >= 2 and len(set(ids)) == len(ids), "merge needs two or more distinct domains")
        doms = [_domain(state, d) for d in ids]
        _check(len({d.host for d in doms}) == 1, "merged domains must share a host")
        for d in doms:
            _check(d.state in ("active", "draining") and d.ready_at <= state.now, f"domain {d.id} is {d.state}")
            _no_flights(state, d.id)
        target, rest = doms[0], doms[1:]
        moved = np.flatnonzero(np.isin(state.guest_domain, [d.id for d in rest]))
        # The whole is as patched as its least recently patched part: it was patched inside a
        # window only if every part was (earliest start, latest end).
        merged = replace(target, cpu_mips=sum(d.cpu_mips for d in doms), mem_mb=sum(d.mem_mb for d in doms),
                         patch_started=min(d.patch_started for d in doms),
                         patch_until=max(d.patch_until for d in doms))
        gone = [replace(d, cpu_mips=0.0, mem_mb=0.0, services=(), state="merged") for d in rest]
        out = state.with_domain(merged, *gone).evolve(guest_domain=_set(state.guest_domain, moved, target.id))
        return out, Cost(seconds=state.model.repin_s), moved, {"into": target.id, "repinned": len(moved)}

    # capture: the shared record (time, domain count) is all a merge's post-condition needs

    def postcondition(self, state, before):
        rest = [state.domains[d] for d in self.domains[1:]]
        if all(d.state == "merged" for d in rest):
            return Verdict.DONE, f"merged into {self.domains[0]}"
        if all(d.live for d in rest):
            return Verdict.NOT_RUN, "domains still apart"
        return Verdict.FAILED, "some domains merged, others not"

    def touches(self, state, next_domain):
        # The first domain takes the others' guests and room; the others are freed (and end).
        return Touch(uses={self.domains[0]} if self.domains else set(), frees=set(self.domains[1:]),
                     excl_domains=set(self.domains),
                     hosts=_on(_host_of(state, self.domains[0]) if self.domains else None))
