"""presplit's IO-driven decisions on split-domain fleets: which services a domain runs, and the fabric split.

Functions over the tick's plan (:class:`presplit.policies.presplit.domains.WhatIf`:
its what-if state, parameters, forecasts and ``try_``), kept apart from the
CPU-driven patch, placement and balancing steps:

- :func:`choose_services`: each domain runs the minimal services plus the
  optional ones its guests' correlation-aware disk and network IO outlook
  needs (added above ``target`` of what runs; dropped under ``io_release`` of
  the rest, after ``service_hold_s``);
- :func:`adapt_fabric`: each host's bandwidth is split between its guests'
  network outlook (kept under ``target``) and live migrations (the rest,
  within bounds), so quiet hosts migrate fast and busy ones protect guests.

Both do nothing unless the scenario's services carry IO (then guest IO is
observed; otherwise there is nothing to act on).
"""

from __future__ import annotations

import numpy as np

from presplit.plan import ResizeDomain, SetMigrationShare
from presplit.forecast.outlook import group_series, upper


def _carried(services) -> np.ndarray:
    """Disk and network MB/s a set of services carries."""
    return np.array([sum(x.disk_mb_s for x in services), sum(x.net_mb_s for x in services)])


def io_upper(plan, guests: np.ndarray) -> np.ndarray:
    """Disk and network IO outlook (MB/s) of a set of guests; zeros when IO is not modelled."""
    if not plan.state.model.io_modelled or not hasattr(plan.fc, "io_upper"):
        return np.zeros(2)
    return plan.fc.io_upper(guests)


def services_for(plan, io: np.ndarray, current) -> tuple:
    """The service set a domain with IO outlook ``io`` should run, starting from ``current``.

    Optional services that carry a resource whose outlook crosses ``target``
    of what is running are added (the one carrying most per CPU first);
    an optional service is dropped when the outlook fits under
    ``io_release`` of what the rest carry. The minimal set always stays.
    """
    model = plan.state.model
    have = list(current)
    for k in range(2):
        spare = [x for x in model.optional_services if x not in have and (x.disk_mb_s, x.net_mb_s)[k] > 0]
        spare.sort(key=lambda x: -(x.disk_mb_s, x.net_mb_s)[k] / max(x.cpu_mips, 1.0))
        while io[k] > plan.p.target * _carried(have)[k] and spare:
            have.append(spare.pop(0))
    for x in [x for x in have if x not in model.minimal_services]:
        rest = [y for y in have if y is not x]
        if (io <= plan.p.io_release * _carried(rest)).all():
            have = rest
    return tuple(have)


def io_outlook(plan, group_of_domain: np.ndarray) -> np.ndarray:
    """[groups, 2] correlation-aware disk and network IO outlook (MB/s) of the guests of each group.

    ``group_of_domain`` maps domain ids to group ids (the identity for
    domains, the host array for hosts); guests count where they are
    going when they migrate.
    """
    s = plan.state
    io_rec = plan.fc.recent_io(np.arange(s.n_guests))  # [guests, samples, 2]
    n = int(group_of_domain.max()) + 1 if len(group_of_domain) else 0
    sums = np.stack([group_series(s.guest_domain, s.guest_dest, io_rec[:, :, k], group_of_domain, n)
                     for k in range(2)], axis=1)  # [groups, 2, samples]
    return upper(sums, plan.params)


def adapt_fabric(plan) -> None:
    """Split each host's fabric bandwidth between guest traffic and migrations by observed traffic.

    Guests keep room for their network outlook at ``target``; migrations
    get the rest (between ``min_migration_share`` and ``max_migration_share``),
    so a quiet host migrates fast -- shorter copies, shorter pauses -- and
    a busy one protects its guests. Changes smaller than
    ``share_step`` are not made (no churn on noise).
    """
    s = plan.state
    if not s.model.io_modelled or not hasattr(plan.fc, "recent_io"):
        return  # guest traffic is not observed: keep the scenario's static share
    host = s.domain_arrays["host"]
    net = io_outlook(plan, host)[:, 1] if len(host) else np.zeros(0)
    net = np.concatenate([net, np.zeros(s.n_hosts - len(net))])
    nic = s.host_nic_mb_s
    want = np.clip(1.0 - net / (plan.p.target * nic), plan.p.min_migration_share, plan.p.max_migration_share)
    for h in np.flatnonzero(s.host_on & (np.abs(want - s.host_mig_share) >= plan.p.share_step)):
        plan.try_(SetMigrationShare(int(h), round(float(want[h]), 3), reason=(
            f"host {h} guest network outlook {net[h]:.0f} MB/s of {nic[h]:.0f} MB/s: migrations may take "
            f"{want[h]:.0%} of its bandwidth (was {float(s.host_mig_share[h]):.0%})"),
            details={"net_outlook_mb_s": float(net[h]), "nic_mb_s": float(nic[h]), "target": plan.p.target}))


def choose_services(plan) -> None:
    """Give each usable domain the optional services its guests' IO outlook needs, and no more."""
    s = plan.state
    if not s.model.io_modelled or not s.model.optional_services or not hasattr(plan.fc, "recent_io"):
        return
    # Every domain's IO outlook at once; only domains that may need a change go on.
    outlook = io_outlook(plan, np.arange(len(s.domains)))
    a = s.domain_arrays
    minimal = len(s.model.minimal_services)
    has_optional = np.array([len(d.services) > minimal for d in s.domains])
    crossing = (outlook > plan.p.target * a["io_mb_s"]).any(axis=1)
    for d in np.flatnonzero(plan.usable_mask & a["live"] & (crossing | has_optional)):
        dom = plan.state.domains[int(d)]
        if plan.state.now - dom.services_at < plan.p.service_hold_s and len(dom.services) > minimal \
                and not crossing[d]:
            continue  # a service change holds for a while: no add-drop flapping
        io = outlook[d]
        want = services_for(plan, io, dom.services)
        if set(want) == set(dom.services):
            continue
        added = [x.name for x in want if x not in dom.services]
        dropped = [x.name for x in dom.services if x not in want]
        carried = np.array(dom.io_mb_s)
        why = (f"domain {dom.id} IO outlook {io[0]:.0f} MB/s disk, {io[1]:.0f} MB/s network against "
               f"{carried[0]:.0f} / {carried[1]:.0f} its services carry: "
               + "; ".join(p for p in (f"add {', '.join(added)}" if added else "",
                                      f"drop {', '.join(dropped)}" if dropped else "") if p))
        plan.try_(ResizeDomain(dom.id, dom.cpu_mips, dom.mem_mb, dom.id, services=want, reason=why,
                               details={"io_outlook_mb_s": io.tolist(), "io_carried_mb_s": carried.tolist(),
                                        "target": plan.p.target, "release": plan.p.io_release}))
