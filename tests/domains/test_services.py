"""Domain services that carry IO: the transition, the IO accounting, and the policy choosing services."""

from __future__ import annotations

import numpy as np
import pytest

from tests_support import journal_round_trip, small_fleet
from tests_support import placed as placed_round_robin
from presplit.model.domains import DomainModel, PatchWindowSim, Service
from presplit.plan import ResizeDomain, SplitDomain, apply_action
from presplit.policies.presplit.domains import DomainPresplit
from presplit.sim.domain_engine import DomainWorkload, run_domains
from presplit.sim.forecast_feed import ObservedForecasts

VMM = Service("vmm", 1000.0, 2048.0, disk_mb_s=100.0, net_mb_s=100.0)
PROXY = Service("storage-proxy", 500.0, 1024.0, disk_mb_s=1000.0)
OFFLOAD = Service("net-offload", 500.0, 512.0, net_mb_s=1000.0)
IO_MODEL = DomainModel(minimal_services=(VMM,), optional_services=(PROXY, OFFLOAD))


def placed(n_guests=4, n_hosts=1):
    return placed_round_robin(n_hosts, ((1, 4096.0),) * n_guests, model=IO_MODEL)


def test_services_only_resize_keeps_the_allotment_and_stamps_the_time():
    state = placed().evolve(now=600.0)
    dom = state.domains[0]
    new, out = apply_action(state, ResizeDomain(0, dom.cpu_mips, dom.mem_mb, 0, services=(VMM, PROXY)))
    assert out.ok
    d = new.domains[0]
    assert (d.cpu_mips, d.mem_mb) == (dom.cpu_mips, dom.mem_mb)
    assert d.io_mb_s == (1100.0, 100.0) and d.services_at == 600.0
    assert d.capacity_mips == dom.capacity_mips - 500.0  # the proxy's overhead comes out of the guests' room
    assert new.domain_arrays["io_mb_s"][0].tolist() == [1100.0, 100.0]


def test_services_only_resize_refuses_an_allotment_change_and_an_overfull_domain():
    state = placed()
    dom = state.domains[0]
    _, out = apply_action(state, ResizeDomain(0, dom.cpu_mips - 100, dom.mem_mb, 0, services=(VMM,)))
    assert not out.ok and "services only" in out.reason
    # Eight 1-vCPU guests fill an 8-core host that already runs the VMM: no room for a proxy.
    full = placed(n_guests=7)
    _, out = apply_action(full, ResizeDomain(0, dom.cpu_mips, dom.mem_mb, 0, services=(VMM, PROXY)))
    assert not out.ok and "services" in out.reason


def test_split_new_domain_runs_the_services_asked_for():
    state = placed()
    new, out = apply_action(state, SplitDomain(0, ((2000.0, 8192.0),), services=(VMM, PROXY)))
    assert out.ok
    assert new.domains[1].services == (VMM, PROXY) and new.domains[1].io_mb_s == (1100.0, 100.0)


def io_run(disk, policy, *, model=IO_MODEL, net=None, windows=()):
    """One host, four guests; ``disk`` [steps] MB/s per guest (``net`` likewise)."""
    n, steps = 4, len(disk)
    state = small_fleet(n_hosts=1, guests=((1, 4096.0),) * n, arrived=False, model=model)
    state = state.evolve(patch_windows=tuple(windows))
    io = np.zeros((n, steps, 2))
    io[:, :, 0] = np.asarray(disk, float)[None, :]
    if net is not None:
        io[:, :, 1] = np.asarray(net, float)[None, :]
    work = DomainWorkload(np.full((n, steps), 0.3), None, np.zeros(n, np.int64), 300.0, io)
    return run_domains(state, work, policy, forecasts=ObservedForecasts(n), check_invariants=True)


def ramp(steps=60, low=5.0, high=60.0):
    """Per-guest disk MB/s: low, a slow rise to high (4 guests: 20 -> 240 MB/s in total), high, then low."""
    up = np.linspace(low, high, 12)
    return np.concatenate([np.full(12, low), up, np.full(12, high), np.full(steps - 36, low)])


def test_policy_adds_the_storage_proxy_before_io_runs_short_and_drops_it_after():
    result = io_run(ramp(), DomainPresplit())
    changes = [e for e in result.events if isinstance(e.action, ResizeDomain) and e.outcome.ok]
    added = [e for e in changes if "add storage-proxy" in e.action.reason]
    dropped = [e for e in changes if "drop storage-proxy" in e.action.reason]
    assert len(added) == 1 and len(dropped) == 1
    assert added[0].time < dropped[0].time
    assert dropped[0].time - added[0].time >= DomainPresplit().service_hold_s
    assert added[0].action.details["io_outlook_mb_s"][0] > DomainPresplit().target * 100.0
    assert not any("net-offload" in e.action.reason for e in changes)  # no network demand: no offload
    m = result.metrics
    assert m["io_shortfall"] == 0.0 and m["service_changes"] == 2
    final = result.final_state.domains[0]
    assert final.services == (VMM,)  # back to the minimal set once the IO is gone


def test_without_optional_services_the_same_io_runs_short():
    bare = DomainModel(minimal_services=(VMM,))
    m = io_run(ramp(), DomainPresplit(), model=bare).metrics
    # 240 MB/s of demand against the VMM's 100 MB/s for 12+ steps.
    assert m["io_shortfall"] > 0.1 and m["io_slatah"] > 0.1 and m["service_changes"] == 0


def test_io_shortfall_arithmetic():
    # Constant 40 MB/s disk per guest (160 MB/s), 100 carried: 60 of 160 unserved every step.
    bare = DomainModel(minimal_services=(VMM,))
    m = io_run(np.full(10, 40.0), DomainPresplit(), model=bare).metrics
    assert m["io_shortfall"] == pytest.approx(60.0 / 160.0)
    assert m["io_slatah"] == pytest.approx(1.0)


def test_io_is_not_modelled_without_service_capacities():
    plain = DomainModel(minimal_services=(Service("vmm", 1000.0, 2048.0),))
    assert not plain.io_modelled and IO_MODEL.io_modelled
    m = io_run(np.full(10, 500.0), DomainPresplit(), model=plain).metrics
    assert m["io_shortfall"] == 0.0 and m["service_changes"] == 0


def test_patch_split_starts_the_new_domain_with_the_services_its_guests_need():
    disk = np.full(60, 60.0)  # 240 MB/s from the start: more than the VMM carries
    window = PatchWindowSim(0, 3600.0, 3600.0 * 4, 1800.0)
    result = io_run(disk, DomainPresplit(), windows=(window,))
    splits = [e for e in result.events if isinstance(e.action, SplitDomain) and e.outcome.ok]
    assert splits and PROXY in splits[0].action.services
    assert result.metrics["patch_windows_met"] == result.metrics["patch_windows_total"] == 1
    assert result.metrics["io_shortfall"] < 0.2  # short only until the first outlook asks for the proxy


def test_journal_keeps_service_io_and_a_services_change_reverts():
    state = placed()
    dom = state.domains[0]
    action = ResizeDomain(0, dom.cpu_mips, dom.mem_mb, 0, services=(VMM, PROXY), reason="io")
    decoded, _, after, unchanged, (back, ok, why) = journal_round_trip(state, action)
    assert decoded == action
    assert after[1] == "resized"
    assert unchanged[1] == "allotment and services unchanged"
    assert ok, why
    assert back.domains[0].services == (VMM,) and back.domains[0].cpu_mips == dom.cpu_mips
