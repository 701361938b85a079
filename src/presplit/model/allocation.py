"""Per-host MIPS allocation, the way CloudSim's time-shared over-subscription scheduler does it.

A host gives every guest its requested MIPS (capped at one PE's MIPS) when the
sum fits; otherwise every request is scaled by capacity / demand and floored.
A guest migrating out gets ``1 - source_degradation`` of its share; a guest
migrating in takes only ``destination_reservation`` of its request at the
destination. These rules are written once here and used both by the fleet-wide
vectorised update and by the what-if view the baseline policies work on.
"""

from __future__ import annotations

import numpy as np


def allocate(requested: np.ndarray, pe_mips: np.ndarray, total_mips: np.ndarray, host: np.ndarray,
             migrating_out: np.ndarray, n_hosts: int, in_requested: np.ndarray, in_pe_mips: np.ndarray,
             in_host: np.ndarray, degradation: float, reservation: float):
    """Allocate MIPS on every host at once.

    ``requested/pe_mips/host/migrating_out`` describe guests at their own host
    (the host that counts them); ``in_*`` describe migrating-in copies at their
    destination. Returns (alloc, in_alloc, need, oversubscribed) where ``need``
    is each host's demand as the scheduler counts it.
    """
    capped = np.minimum(requested, pe_mips)
    in_capped = np.minimum(in_requested, in_pe_mips)
    need = np.bincount(host, capped, minlength=n_hosts)
    if len(in_host):
        need += np.bincount(in_host, in_capped * reservation, minlength=n_hosts)
    over = need > total_mips
    keep = 1.0 - degradation
    alloc = np.where(migrating_out, capped * keep, capped)
    in_alloc = in_capped * reservation
    if over.any():
        factor = np.divide(total_mips, need, out=np.ones_like(need), where=need > 0)
        f = factor[host]
        scaled = np.floor(np.where(migrating_out, capped * f * keep, capped * f))
        alloc = np.where(over[host], scaled, alloc)
        if len(in_host):
            in_scaled = np.floor(in_capped * reservation * factor[in_host])
            in_alloc = np.where(over[in_host], in_scaled, in_alloc)
    return alloc, in_alloc, need, over
