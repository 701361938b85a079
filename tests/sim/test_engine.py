"""The consolidation engine on hand-computable fleets, and the C step against its Python reference."""

from __future__ import annotations

import numpy as np
import pytest

from presplit.model import SimModel, cloudsim_preset
from presplit.model.hardware import HP_ML110_G5, Fleet, GuestType
from presplit.policies import PolicyError, make_policy
from presplit.policies.cloudsim.baselines import DetectAndConsolidate
from presplit.sim.engine import Engine


class Scripted:
    """Places every guest on host 0, then moves the given guests at the first tick."""

    migrates = True
    non_power_aware = False

    def __init__(self, moves):
        self.moves = moves
        self.done = False

    def place_initial(self, engine):
        for g in range(engine.n_guests):
            engine.create(g, 0)

    def optimise(self, engine):
        if self.done:
            return []
        self.done = True
        return self.moves


def _fleet(n_hosts: int, guest_mips: float, ram: float, n_guests: int = 1) -> Fleet:
    return Fleet(
        host_types=(HP_ML110_G5,), host_type_of=np.zeros(n_hosts, dtype=np.int64),
        guest_types=(GuestType("g", guest_mips, 1, ram, 100.0),),
        guest_type_of=np.zeros(n_guests, dtype=np.int64),
        model=SimModel(horizon_s=3 * 300.0 + 1.0),
    )


def test_one_idle_free_host_energy_and_no_violation():
    fleet = _fleet(1, 2000.0, 1740.0)
    util = np.full((1, 288), 0.5)
    result = Engine(fleet, util, Scripted([])).run()
    m = result.metrics
    # Ticks at 300.1, 600.1, 900.1: the first frame is not integrated (host idle before),
    # then two frames of 300 s at u = 1000/5320.
    u = 1000.0 / 5320.0
    watts = HP_ML110_G5.power.power(u)
    assert m["energy_kwh"] == pytest.approx(2 * 300.0 * watts / 3.6e6)
    assert m["migrations"] == 0
    assert m["slatah"] == 0.0 and m["pdm"] == 0.0 and m["overall_sla_violation"] == 0.0


def test_migration_duration_degradation_and_destination_violation():
    fleet = _fleet(2, 2000.0, 1740.0)
    util = np.full((1, 288), 0.5)
    result = Engine(fleet, util, Scripted([(0, 1)]), record_events=True).run()
    m = result.metrics
    duration = 1740.0 / 62.5  # RAM / (1 Gbit/s / 2)
    requested = 1000.0
    # PDM: 10 % of the guest's MIPS withheld during the migration, over all MIPS requested
    # from the first to the last state (600 s).
    assert m["migrations"] == 1
    assert m["pdm"] == pytest.approx(0.1 * requested * duration / (requested * 600.0))
    # SLATAH: the destination counts 10 % allocated against the full request while the guest
    # migrates in; the source is active only until the guest has left, the destination after.
    assert m["slatah"] == pytest.approx(duration / (duration + 600.0))
    assert result.events == [(pytest.approx(300.1), 0, 0, 1)]


def test_oversubscribed_host_scales_and_floors_every_request():
    fleet = _fleet(1, 2500.0, 613.0, n_guests=3)
    util = np.full((3, 288), 0.9)  # 3 x 2250 MIPS on 5320 (each capped at a 2660 PE)
    result = Engine(fleet, util, Scripted([])).run()
    m = result.metrics
    f = 5320.0 / 6750.0
    allocated = 3 * np.floor(2250.0 * f)
    assert m["overall_sla_violation"] == pytest.approx(1 - allocated / 6750.0)
    assert m["slatah"] == pytest.approx(1.0)


def test_npa_charges_every_host_full_power_for_the_day(planetlab_day):
    from presplit.sim import run_simulation

    row, _ = run_simulation(planetlab_day, "npa")
    assert row["energy_kwh"] == pytest.approx(2410.80, abs=0.01)


def test_fluid_bound_matches_the_model_page(planetlab_day):
    from presplit.sim.runner import fluid_bound_kwh

    assert fluid_bound_kwh(planetlab_day, cloudsim_preset(planetlab_day.n_guests)) == pytest.approx(114.9, abs=0.05)


@pytest.mark.parametrize("name", ["lr-mmt:1.2", "thr-mmt:0.8", "iqr-mu:1.5", "mad-mmt:2.5", "lrr-mu:1.2"])
def test_c_step_returns_the_python_reference_moves(name, small_day):
    """Every tick, the kernel's moves equal those of the readable Python implementation."""
    policy = make_policy(name)
    ticks = []

    class Both(DetectAndConsolidate):
        def optimise(self, engine):
            fast = super().optimise(engine)
            slow = self.optimise_in_python(engine)
            ticks.append(len(fast))
            assert fast == slow, f"tick {len(ticks)}"
            return fast

    both = Both(policy.detector, policy.selector)
    fleet = cloudsim_preset(small_day.shape[0], n_hosts=120)
    Engine(fleet, small_day, both).run()
    assert len(ticks) == 287 and sum(ticks) > 0


def test_maximum_correlation_runs_on_the_python_path(small_day):
    fleet = cloudsim_preset(small_day.shape[0], n_hosts=120)
    result = Engine(fleet, small_day, make_policy("lr-mc:1.2")).run()
    assert result.metrics["migrations"] > 0


def test_random_selection_is_reproducible_with_a_seed(small_day):
    fleet = cloudsim_preset(small_day.shape[0], n_hosts=120)
    a = Engine(fleet, small_day, make_policy("thr-rs:0.8", seed=3)).run().metrics
    b = Engine(fleet, small_day, make_policy("thr-rs:0.8", seed=3)).run().metrics
    assert a == b


@pytest.mark.parametrize("name, message", [
    ("lr-xyz:1.2", "unknown policy"), ("foo", "unknown policy"), ("thr-mmt:abc", "not a number"),
    ("thr-mmt:1.5", "threshold must be in"), ("mad-mmt:-1", "safety parameter"),
])
def test_bad_policy_names_are_refused(name, message):
    with pytest.raises(PolicyError, match=message):
        make_policy(name)


def test_a_fleet_too_small_for_the_workload_fails_clearly():
    fleet = _fleet(1, 2000.0, 1740.0, n_guests=4)  # 4 x 1740 MB RAM on a 4096 MB host
    with pytest.raises(RuntimeError, match="fleet is too small"):
        Engine(fleet, np.full((4, 288), 0.1), make_policy("dvfs")).run()


@pytest.mark.parametrize("name", ["thr-mmt:0.8", "iqr-mmt:1.5", "mad-mmt:2.5", "lr-mmt:1.2"])
def test_numpy_detectors_agree_with_the_kernel(name, small_day):
    """detectors.py states the rules the C kernel applies: both give the same verdicts."""
    from presplit.policies.cloudsim.view import AllocationView

    policy = make_policy(name)
    verdicts = []

    class Check(DetectAndConsolidate):
        def optimise(self, engine):
            view = AllocationView(engine)
            hosts = np.arange(engine.n_hosts)
            fast = view.overloaded(hosts, self.detector)
            assert (fast == self.detector.overloaded(view, hosts)).all()
            verdicts.append(int(fast.sum()))
            return super().optimise(engine)

    fleet = cloudsim_preset(small_day.shape[0], n_hosts=120)
    Engine(fleet, small_day, Check(policy.detector, policy.selector)).run()
    assert sum(verdicts) > 0  # some hosts were overloaded, so the comparison had teeth
