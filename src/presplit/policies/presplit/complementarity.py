"""Placement that uses time: put a guest where its predicted peaks do not coincide with the host's.

Every candidate destination already passes the fit test on the upper bound of
the *summed* forecast rows of the host and the guest (correlation-aware: a
guest whose peaks fall when the host is quiet adds less than its own peak).
What this module changes is the *choice* among the hosts that fit, the idea
of Microsoft's Coach (ASPLOS 2025): co-locate guests whose demand over time is
complementary, so more of them share a host before its bound reaches the
target.

Best fit on the bound *after* the move (presplit's rule, ``fit``) rewards the
opposite: of two equally full hosts, the one where the guest's peak coincides
with the host's ends up fuller and wins. The orders here:

* ``host`` -- best fit on the host's bound *before* the move (the fullest
  host that fits); the guest's own contribution, large or small, does not
  decide.
* ``complement`` -- the host whose upper bound the guest raises least,
  relative to the guest's own bound (``(U(h + g) - U(h)) / U(g)``, 0 when the
  guest's peaks fall entirely in the host's troughs, 1 when they coincide),
  in steps of 1/8 (so that hosts about as complementary are then ordered by
  fullness, best fit); the most power-efficient host class first, as always.
* ``fit-complement`` -- best fit first, in steps of 1/20 of capacity (hosts
  within 5 % of each other's fullness after the move count as equally full),
  then the complementarity ratio above: packing density decides, time breaks
  the ties.

The orders here see what the forecast rows see: on the CloudSim engine 30
samples (2.5 h) of history, so within-day co-movement. Where a trace is
longer than a day, daily patterns enter the fit test instead (``daily`` in
:class:`~presplit.policies.presplit.consolidation.ConsolidationParams`,
:mod:`daily`): a destination must also have held host + guest over the same
window on the earlier days, so guests whose daily peaks coincide are not
candidates for each other at a quiet hour.
"""

from __future__ import annotations

import numpy as np

PLACES = ("fit", "host", "complement", "fit-complement")
COMPLEMENT_STEPS = 8  # resolution of the complementarity ratio before fullness decides
FIT_STEPS = 20  # resolution of fullness before complementarity decides (fit-complement)


def placement_order(place: str, u_after: np.ndarray, u_before: np.ndarray, u_guest: np.ndarray | float,
                    rise: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Candidate order (best first) for ``place``; all arrays are per candidate, bounds as shares of capacity."""
    if place == "fit":
        return np.lexsort((rise, -u_after, cost))
    if place == "host":
        return np.lexsort((rise, -u_after, -u_before, cost))
    if place in ("complement", "fit-complement"):
        u_guest = np.broadcast_to(np.asarray(u_guest, dtype=np.float64), u_after.shape)
        ratio = np.clip(np.divide(u_after - u_before, u_guest, out=np.ones_like(u_after), where=u_guest > 0),
                        0.0, 1.0)
        if place == "complement":
            return np.lexsort((rise, -u_after, np.floor(ratio * COMPLEMENT_STEPS), cost))
        return np.lexsort((rise, ratio, -np.floor(u_after * FIT_STEPS), cost))
    raise ValueError(f"place {place!r}: expected one of {', '.join(PLACES)}")
