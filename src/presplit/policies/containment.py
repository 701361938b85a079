"""Failure containment for presplit: a host with many guests runs several split domains.

A domain's services crashing stops the guests of that domain only
(:func:`presplit.plan.failures.crash_domain`), so the guests of one host
spread over ``failure_domains`` domains lose at most about
1/``failure_domains`` of them to one crash, where today's one-domain
hypervisor loses them all. Each extra domain costs its minimal services (CPU
and memory taken from the guests' share) and a few re-pins, which move no
bytes and stop no guest.

Each tick, on hosts with at least ``contain_min_guests`` guests (outside
patch work, every domain active): a host with fewer domains than
``failure_domains`` splits off one (started small; guests bring their share
of CPU and memory when they are re-pinned, as the patch split does), and,
once it is ready, guests are re-pinned from the domain holding the most to
the one holding the fewest until their counts differ by at most one (at
most ``MOVES_PER_HOST`` a tick, in guest order: which guests move is neutral
to what they weigh). :func:`may_merge` keeps presplit's recombination from
undoing it. Two domains is the default because a patch window patches a
host's domains one after the other (30 minutes each in the shipped scenario).
"""

from __future__ import annotations

import numpy as np

from presplit.model.domains import RUNNING
from presplit.plan import SplitDomain

MOVES_PER_HOST = 8


def _guests_on(plan, h: int) -> int:
    return int(sum(len(plan.members(d.id)) for d in plan.state.domains_of(h)))


def may_merge(plan, h: int) -> bool:
    """Whether merging host ``h``'s domains keeps containment (too few guests there for it to matter)."""
    p = plan.p
    return p.failure_domains <= 1 or _guests_on(plan, h) < p.contain_min_guests


def contain(plan) -> None:
    """Split busy hosts into ``failure_domains`` domains and even out their guests (see the module docstring)."""
    p, s = plan.p, plan.state
    if p.failure_domains <= 1:
        return
    placed = s.guest_domain >= 0
    per_host = np.bincount(s.domain_arrays["host"][s.guest_domain[placed]], minlength=s.n_hosts)
    for h in np.flatnonzero(per_host >= p.contain_min_guests).tolist():
        s = plan.state
        if h in plan.due or not s.host_ready(h):
            continue
        doms = s.domains_of(h)
        if any(not plan.usable(d) for d in doms):
            continue  # provisioning, patching or restarting: wait
        n = _guests_on(plan, h)
        if n < p.contain_min_guests:
            continue
        if len(doms) < p.failure_domains:
            _split(plan, max(doms, key=lambda d: (len(plan.members(d.id)), -d.id)), n)
            continue
        for _ in range(MOVES_PER_HOST):
            doms = plan.state.domains_of(h)
            counts = {d.id: len(plan.members(d.id)) for d in doms}
            src = max(counts, key=lambda d: (counts[d], -d))
            dst = min(counts, key=lambda d: (counts[d], d))
            if counts[src] - counts[dst] <= 1:
                break
            members = plan.members(src)
            movable = members[plan.state.guest_status[members] == RUNNING]
            if not len(movable):
                break
            why = (f"host {h} holds {n} guests: spread them over its {len(doms)} domains so one domain's "
                   f"services crashing stops only its own (failure containment)")
            if not plan.repin(int(movable[0]), src, [dst], reason=why,
                              details={"guests_on_host": n, "in_source": counts[src], "in_destination": counts[dst],
                                       "failure_domains": p.failure_domains}):
                break


def _split(plan, dom, n: int) -> None:
    """Carve a small domain out of ``dom`` (its services and a little room; guests bring the rest)."""
    s = plan.state
    services = s.model.minimal_services
    svc_mips, svc_mb = sum(x.cpu_mips for x in services), sum(x.mem_mb for x in services)
    free_cpu = dom.capacity_mips - float(s.reserved[dom.id, 0])
    free_mb = dom.capacity_mb - float(s.reserved[dom.id, 1])
    cpu = min(1.5 * svc_mips, free_cpu)
    mem = min(1.5 * svc_mb, free_mb)
    if cpu <= svc_mips or mem <= svc_mb or not np.isfinite(cpu + mem):
        return  # too full to carve even the services out
    plan.try_(SplitDomain(dom.id, ((cpu, mem),), services=services,
                          reason=f"host {dom.host} holds {n} guests in {len(s.domains_of(dom.host))} domain(s): "
                                 f"split off another so one domain's services crashing stops only part of them "
                                 f"(failure containment)",
                          details={"guests_on_host": n, "new_cpu_mips": cpu, "new_mem_mb": mem}))
