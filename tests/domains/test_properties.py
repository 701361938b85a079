"""Property tests: random small fleets and random action sequences keep the invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests_support import MINIMAL, small_fleet
from presplit.model.domains import ABSENT, PENDING, RUNNING, Service
from presplit.plan import (
    MergeDomains, MigrateGuest, MoveGuest, PatchDomain, PlaceGuest, PowerOff, PowerOn, ResizeDomain,
    SetMigrationShare, SplitDomain, advance, apply_action,
)
from presplit.plan.invariants import violations



def next_action(data, state):
    """Draw an action aimed at the current state (siblings, placed guests), some out of range, or a time step."""
    live = [d.id for d in state.domains if d.live]
    d = st.one_of(st.sampled_from(live), st.integers(0, len(state.domains)))
    g, h = st.integers(0, state.n_guests - 1), st.integers(0, state.n_hosts - 1)
    size = st.tuples(st.floats(2000, 4500), st.floats(4000, 20000))
    kind = data.draw(st.sampled_from(["place", "place", "move", "move", "move", "migrate", "migrate", "split",
                                      "split", "resize", "services", "merge", "merge", "patch", "on", "off",
                                      "share", "advance", "advance", "advance"]))
    if kind == "advance":
        return ("advance", data.draw(st.floats(1, 900)))
    if kind == "services":  # a services-only change (donor == domain), sometimes with an allotment change
        dom = state.domains[data.draw(st.sampled_from(live))]
        services = data.draw(st.lists(st.sampled_from(SERVICES), max_size=3, unique=True).map(tuple))
        cpu = dom.cpu_mips + data.draw(st.sampled_from([0.0, 0.0, 500.0]))
        return ResizeDomain(dom.id, cpu, dom.mem_mb, dom.id, services=services)
    if kind == "share":
        return SetMigrationShare(data.draw(h), data.draw(st.floats(-0.2, 1.2)))
    if kind in ("move", "resize", "merge"):
        host = data.draw(h)
        sib = st.sampled_from([x.id for x in state.domains_of(host)])
        if kind == "move":
            here = np.flatnonzero(np.isin(state.guest_domain, [x.id for x in state.domains_of(host)])
                                  & (state.guest_status == RUNNING))
            guest = int(data.draw(st.sampled_from(here.tolist() or [0])))
            others = [x.id for x in state.domains_of(host) if x.id != state.guest_domain[guest]]
            return MoveGuest(guest, data.draw(st.sampled_from(others or [0])))
        if kind == "resize":
            return ResizeDomain(data.draw(sib), data.draw(st.floats(1500, 8000)), data.draw(st.floats(3000, 60000)),
                                data.draw(sib))
        ids = [x.id for x in state.domains_of(host)]
        return MergeDomains(tuple(data.draw(st.permutations(ids)))[: data.draw(st.integers(2, 3))])
    return data.draw({
        "place": st.builds(PlaceGuest, g, d),
        "migrate": st.builds(MigrateGuest, g, d, st.one_of(st.none(), st.floats(-0.01, 0.5))),
        "split": st.builds(SplitDomain, d, st.lists(size, min_size=1, max_size=3).map(tuple)),
        "patch": st.builds(PatchDomain, d, st.floats(60, 3600)),
        "on": st.builds(PowerOn, h), "off": st.builds(PowerOff, h)}[kind])


SERVICES = (*MINIMAL, Service("storage-proxy", 800.0, 1024.0, disk_mb_s=1000.0),
            Service("huge", 9000.0, 1024.0, net_mb_s=10.0))  # "huge" never fits an 8-core host's domain

fleets = st.builds(
    lambda n, gs, racks: small_fleet(n_hosts=n, guests=tuple(gs), racks=racks),
    st.integers(1, 4),
    st.lists(st.tuples(st.integers(1, 2), st.sampled_from([1024.0, 4096.0, 16384.0])), min_size=1, max_size=10),
    st.integers(1, 2),
)


def snapshot(state):
    return (state.domains, state.now, *(np.array(getattr(state, k)).tobytes() for k in (
        "guest_domain", "guest_dest", "guest_status", "host_on", "host_ready_at", "guest_down_end",
        "host_mig_share")))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleets, st.data())
def test_random_action_sequences_keep_invariants(state, data):
    assert violations(state) == []
    for _ in range(data.draw(st.integers(1, 60))):
        act = next_action(data, state)
        placed_before = state.guest_domain >= 0
        if isinstance(act, tuple):
            state, _ = advance(state, state.now + act[1])
        else:
            before = snapshot(state)
            new, outcome = apply_action(state, act)
            event(f"{act.kind} {'applied' if outcome.ok else 'refused'}")
            if not outcome.ok:
                assert new is state and snapshot(state) == before, outcome
                continue
            state = new
        assert violations(state) == [], (act, violations(state))
        # Nothing lost: a placed guest stays placed; each guest has one domain (an array slot).
        assert (state.guest_domain[placed_before] >= 0).all()
        assert not ((state.guest_status == ABSENT) | (state.guest_status == PENDING))[placed_before].any()


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.data())
def test_split_then_merge_restores_the_host(n_parts, data):
    state = small_fleet(n_hosts=1, guests=(), cores=16)
    cpu = data.draw(st.lists(st.floats(1500, 2000), min_size=n_parts - 1, max_size=n_parts - 1))
    mem = [4096.0] * (n_parts - 1)
    state, out = apply_action(state, SplitDomain(0, tuple(zip(cpu, mem))))
    assert out.ok, out
    assert violations(state) == []
    state, _ = advance(state, state.now + 60)
    live = [d.id for d in state.domains_of(0)]
    state, out = apply_action(state, MergeDomains(tuple(live)))
    assert out.ok, out
    assert [d.cpu_mips for d in state.domains_of(0)] == [pytest.approx(16000.0)]
    assert violations(state) == []
