"""ResizeDomain: move allotment between sibling domains, or change a domain's services."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from presplit.model.domains import Service
from presplit.plan.actions.base import (
    EPS, Action, Cost, Touch, Verdict, _check, _domain, _holds, _host_of, _on, record, register, undo_via,
)


@register
@dataclass(frozen=True)
class ResizeDomain(Action):
    """Set ``domain``'s allotment, taking the difference from / giving it to sibling ``donor``.

    ``services``, when given, replaces the domain's service set (e.g. adds an
    optional service as demand is predicted). ``donor == domain`` changes the
    services only, inside the same allotment (a host of one domain has no sibling).
    """

    domain: int
    cpu_mips: float
    mem_mb: float
    donor: int
    services: tuple[Service, ...] | None = None

    reversible: ClassVar[bool] = True

    def apply(self, state):
        dom, donor = _domain(state, self.domain), _domain(state, self.donor)
        _check("patching" not in (dom.state, donor.state), "cannot resize a domain being patched")
        services = dom.services if self.services is None else tuple(self.services)
        if dom.id == donor.id:  # no donor: only the services change, inside the same allotment
            _check(self.services is not None and abs(self.cpu_mips - dom.cpu_mips) <= EPS
                   and abs(self.mem_mb - dom.mem_mb) <= EPS,
                   "a resize without a sibling donor may change the services only, not the allotment")
            _holds(state, dom, dom.cpu_mips, dom.mem_mb, services)
            changed = replace(dom, services=services, services_at=state.now)
            return state.with_domain(changed), Cost(seconds=state.model.provision_s), (), {
                "services": [x.name for x in services]}
        _check(dom.host == donor.host, "resize donor must be a sibling domain")
        d_cpu, d_mem = self.cpu_mips - dom.cpu_mips, self.mem_mb - dom.mem_mb
        _holds(state, dom, self.cpu_mips, self.mem_mb, services)
        _holds(state, donor, donor.cpu_mips - d_cpu, donor.mem_mb - d_mem, donor.services)
        at = dom.services_at if self.services is None else state.now
        out = state.with_domain(replace(dom, cpu_mips=float(self.cpu_mips), mem_mb=float(self.mem_mb),
                                        services=services, services_at=at),
                                replace(donor, cpu_mips=donor.cpu_mips - d_cpu, mem_mb=donor.mem_mb - d_mem))
        return out, Cost(seconds=state.model.repin_s), (), {"delta": (d_cpu, d_mem)}

    def capture(self, state):
        return record(state, domains=(("domain", self.domain), ("donor", self.donor)))

    def postcondition(self, state, before):
        dom = state.domains[self.domain]
        names = [s.name for s in dom.services]
        services_ok = self.services is None or names == [s.name for s in self.services]
        if abs(dom.cpu_mips - self.cpu_mips) < 1e-6 and abs(dom.mem_mb - self.mem_mb) < 1e-6 and services_ok:
            return Verdict.DONE, "resized"
        if [dom.cpu_mips, dom.mem_mb] == before.get("domain_alloc") and names == before.get(
                "domain_services", names):
            return Verdict.NOT_RUN, "allotment and services unchanged"
        return Verdict.FAILED, f"domain {self.domain} holds {dom.cpu_mips:g} MIPS / {dom.mem_mb:g} MB"

    def revert(self, state, before):
        """Resize back to the recorded allotment (and services, by name)."""
        cpu, mem = before.get("domain_alloc", (None, None))
        if cpu is None:
            return state, False, "no allotment recorded before the resize"
        services = None
        if self.services is not None:  # put back the services the domain ran before, by name
            known = {s.name: s for s in (*state.model.minimal_services, *state.model.optional_services,
                                         *state.domains[self.domain].services)}
            names = before.get("domain_services")
            if names is None or any(n not in known for n in names):
                return state, False, "services before the resize not recorded"
            services = tuple(known[n] for n in names)
        return undo_via(state, ResizeDomain(self.domain, cpu, mem, self.donor, services=services,
                                            reason="revert of ResizeDomain"))

    def touches(self, state, next_domain):
        return Touch(excl_domains={self.domain, self.donor}, hosts=_on(_host_of(state, self.domain)))
