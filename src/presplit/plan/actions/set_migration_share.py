"""SetMigrationShare: the share of a host's fabric bandwidth live migrations may take."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from presplit.plan.actions.base import Action, Cost, Touch, Verdict, _check, _set, record, register, undo_via

MIN_SHARE = 0.05  # a host's migration share stays within [MIN_SHARE, 1 - MIN_SHARE]


@register
@dataclass(frozen=True)
class SetMigrationShare(Action):
    """Set the share of ``host``'s fabric bandwidth live migrations may take (the fabric's QoS split).

    The rest is kept for guest traffic. A migration runs at its path's
    bottleneck times the smaller share of its two ends; migrations in flight
    keep the rate they started with.
    """

    host: int
    share: float

    reversible: ClassVar[bool] = True

    def apply(self, state):
        h = int(self.host)
        _check(0 <= h < state.n_hosts, f"no host {self.host}")
        share = float(self.share)
        # Some bandwidth always stays with each side: guests need the network, and a migration needs progress.
        _check(MIN_SHARE <= share <= 1.0 - MIN_SHARE,
               f"migration share must be within {MIN_SHARE:g}..{1 - MIN_SHARE:g}, got {share:g}")
        before = float(state.host_mig_share[h])
        return state.evolve(host_mig_share=_set(state.host_mig_share, h, share)), Cost(), (), {"was": before}

    def capture(self, state):
        return record(state, host=self.host)

    def postcondition(self, state, before):
        share = float(state.host_mig_share[self.host])
        if abs(share - self.share) < 1e-9:
            return Verdict.DONE, f"host {self.host} migrations take {share:.0%} of its bandwidth"
        if abs(share - before.get("host_mig_share", float("nan"))) < 1e-9:
            return Verdict.NOT_RUN, "share unchanged"
        return Verdict.FAILED, f"host {self.host} migration share is {share:g}"

    def revert(self, state, before):
        was = before.get("host_mig_share")
        if was is None:
            return state, False, "no migration share recorded before the change"
        return undo_via(state, SetMigrationShare(self.host, was, reason="revert of SetMigrationShare"))

    def touches(self, state, next_domain):
        return Touch(excl_hosts={self.host}, hosts=(self.host,))  # later moves on the host wait for it
