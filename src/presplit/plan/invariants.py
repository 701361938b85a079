"""Invariants of a ClusterState, checked after every action (tests, and the engine in debug runs).

``violations(state)`` returns human-readable problems, empty when the state is
sound: every guest in exactly the places its status says (no loss, no
duplicate); no live domain reserving more than its capacity; merged domains
empty; a host's live domains summing to the host's capacity; the cached
per-domain arrays (capacity, IO the services carry) agreeing with the
domains; each host's migration share within its bounds.
"""

from __future__ import annotations

import numpy as np

from presplit.model.cluster import ClusterState
from presplit.model.domains import ABSENT, MIGRATING, PENDING
from presplit.plan.transition import MIN_SHARE

TOL = 1e-6


def violations(state: ClusterState) -> list[str]:
    out: list[str] = []
    a = state.domain_arrays
    n_dom = len(state.domains)
    dom, dest, status = state.guest_domain, state.guest_dest, state.guest_status
    unplaced = (status == ABSENT) | (status == PENDING)
    if ((dom >= 0) == unplaced).any():
        bad = np.flatnonzero((dom >= 0) == unplaced)
        out.append(f"guests {bad[:5].tolist()} placed/unplaced against their status")
    if (dom >= n_dom).any() or (dest >= n_dom).any():
        out.append("guest points past the last domain")
    placed = dom >= 0
    if placed.any() and not a["live"][dom[placed]].all():
        out.append("a guest sits in a merged domain")
    flying = dest >= 0
    if (flying != (status == MIGRATING)).any():
        out.append("migration destination set without MIGRATING status (or the reverse)")
    if flying.any() and (a["host"][dest[flying]] == a["host"][dom[flying]]).any():
        out.append("a cross-host migration stays on its host")
    # Recount the reservations from the guests: transitions hand states an updated table
    # instead of recounting, and that shortcut must agree with the guests themselves.
    n = len(state.domains)
    booked = np.zeros((n, 2))
    for arr in (state.guest_domain, state.guest_dest):
        placed = arr >= 0
        for k in range(2):
            booked[:, k] += np.bincount(arr[placed], state.guest_reserve[placed, k], minlength=n)
    if not np.allclose(booked, state.reserved, rtol=1e-9, atol=1e-6):
        out.append("the reservation table disagrees with the guests' placement")
    over = booked - np.stack([a["cap_mips"], a["cap_mb"]], axis=1)
    if (over > TOL * np.maximum(1.0, booked)).any():
        out.append(f"domains {np.flatnonzero((over > TOL).any(axis=1)).tolist()} reserve more than their capacity")
    for d in state.domains:
        want = (d.capacity_mips, d.capacity_mb, *d.io_mb_s) if d.live else (0.0, 0.0, 0.0, 0.0)
        have = (a["cap_mips"][d.id], a["cap_mb"][d.id], *a["io_mb_s"][d.id])
        if not np.allclose(want, have):
            out.append(f"domain {d.id}: cached capacity/IO {have} disagree with its services and allotment {want}")
    shares = state.host_mig_share
    default = state.model.migration_bw_share
    if ((shares != default) & ((shares < MIN_SHARE - TOL) | (shares > 1 - MIN_SHARE + TOL))).any():
        out.append(f"migration shares {shares.tolist()} outside {MIN_SHARE}..{1 - MIN_SHARE}")
    for h, spec in enumerate(state.hosts):
        doms = state.domains_of(h)
        cpu, mem = sum(d.cpu_mips for d in doms), sum(d.mem_mb for d in doms)
        if abs(cpu - spec.cpu_mips) > 1e-6 * spec.cpu_mips or abs(mem - spec.ram_mb) > 1e-6 * spec.ram_mb:
            out.append(f"host {h}: domains sum to {cpu:g} MIPS / {mem:g} MB, host has {spec.cpu_mips:g} / {spec.ram_mb:g}")
    return out
