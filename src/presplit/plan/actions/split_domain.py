"""SplitDomain: carve new domains out of a live domain of a host."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from presplit.model.domains import Domain, Service
from presplit.plan.actions.base import (
    Action, Cost, Touch, Verdict, _check, _holds, _host_of, _on, _usable, record, register,
)


@register
@dataclass(frozen=True)
class SplitDomain(Action):
    """Carve new domains of ``sizes`` [(cpu_mips, mem_mb), ...] out of ``domain``.

    The remainder stays with ``domain`` (and its guests). New domains run
    ``services`` (default: the model's minimal set) and are ``provisioning``
    until ``now + provision_s``.
    """

    domain: int
    sizes: tuple[tuple[float, float], ...]
    services: tuple[Service, ...] | None = None

    reversible: ClassVar[bool] = True

    def apply(self, state):
        dom = _usable(state, self.domain)
        _check(len(self.sizes) >= 1, "split needs at least one new size")
        services = state.model.minimal_services if self.services is None else tuple(self.services)
        new, cpu_left, mem_left = [], dom.cpu_mips, dom.mem_mb
        for i, (cpu, mem) in enumerate(self.sizes):
            nd = Domain(len(state.domains) + i, dom.host, float(cpu), float(mem), services, "provisioning",
                        state.now + state.model.provision_s, dom.patch_started, dom.patch_until,
                        services_at=state.now)
            _holds(state, nd, nd.cpu_mips, nd.mem_mb, services)
            new.append(nd)
            cpu_left, mem_left = cpu_left - cpu, mem_left - mem
        _holds(state, dom, cpu_left, mem_left, dom.services)
        out = state.with_domain(replace(dom, cpu_mips=cpu_left, mem_mb=mem_left), *new)
        return out, Cost(seconds=state.model.provision_s), (), {
            "new_domains": [d.id for d in new], "remaining": (cpu_left, mem_left)}

    def capture(self, state):
        return record(state, domains=(("domain", self.domain),))

    def postcondition(self, state, before):
        first, k = before["n_domains"], len(self.sizes)
        if len(state.domains) < first + k:
            return (Verdict.NOT_RUN, f"domain {self.domain} not split yet") if len(state.domains) == first else (
                Verdict.FAILED, f"{len(state.domains) - first} of {k} new domains exist")
        new = state.domains[first:first + k]
        if all(d.state == "active" for d in new):
            return Verdict.DONE, f"domains {[d.id for d in new]} active"
        if all(d.state == "provisioning" for d in new):
            return Verdict.PENDING, f"domains {[d.id for d in new]} provisioning"
        return Verdict.FAILED, f"new domains in states {[d.state for d in new]}"

    def revert(self, state, before):
        """Fold the new domains back into the parent, while they hold no guest."""
        first, k = before.get("n_domains", len(state.domains)), len(self.sizes)
        new_ids = list(range(first, min(first + k, len(state.domains))))
        if not new_ids:
            return state, True, "domain not split: nothing to undo"
        busy = [d for d in new_ids if (state.guest_domain == d).any() or (state.guest_dest == d).any()]
        if busy:
            return state, False, f"new domains {busy} already hold guests"
        parent = state.domains[self.domain]
        news = [state.domains[d] for d in new_ids]
        merged = replace(parent, cpu_mips=parent.cpu_mips + sum(d.cpu_mips for d in news),
                         mem_mb=parent.mem_mb + sum(d.mem_mb for d in news))
        gone = [replace(d, cpu_mips=0.0, mem_mb=0.0, services=(), state="merged") for d in news]
        return state.with_domain(merged, *gone), True, f"domains {new_ids} folded back into {self.domain}"

    def touches(self, state, next_domain):
        new = set(range(next_domain, next_domain + len(self.sizes)))
        return Touch(excl_domains={self.domain, *new}, hosts=_on(_host_of(state, self.domain)),
                     new_domains=len(self.sizes))
