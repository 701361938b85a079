"""The realistic model preset: memory is a hard limit, hosts take time, migrations share NICs, idle guests stay."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from presplit.model.hardware import (
    CLOUDSIM_GUEST_TYPES, HP_ML110_G4, HP_ML110_G5, Fleet, cloudsim_preset, model_preset,
)
from presplit.policies import make_policy
from presplit.sim.engine import Engine
from presplit.sim.runner import fluid_bound_cpu_kwh, fluid_bound_kwh, run_simulation

REALISTIC = model_preset("realistic")
EVERY_POLICY = ["npa", "dvfs", "presplit", *[f"{d}-{s}" for d in ("thr", "iqr", "mad", "lr", "lrr")
                                             for s in ("mmt", "mu", "mc", "rs")]]


class Scripted:
    """Places guest i on host placement[i], then asks for the given moves at the first tick."""

    migrates = True
    non_power_aware = False

    def __init__(self, placement, moves):
        self.placement, self.moves, self.done = placement, moves, False

    def place_initial(self, engine):
        for g, h in enumerate(self.placement):
            engine.create(g, h)

    def optimise(self, engine):
        if self.done:
            return []
        self.done = True
        return self.moves


def _fleet(n_hosts, n_guests, model=REALISTIC, horizon_ticks=3):
    return Fleet(host_types=(HP_ML110_G5,), host_type_of=np.zeros(n_hosts, dtype=np.int64),
                 guest_types=(CLOUDSIM_GUEST_TYPES[1],),  # 2000 MIPS, 1740 MB
                 guest_type_of=np.zeros(n_guests, dtype=np.int64),
                 model=dataclasses.replace(model, horizon_s=horizon_ticks * 300.0 + 1.0))


def test_the_cloudsim_preset_is_the_default_and_realistic_turns_everything_on():
    assert model_preset("cloudsim") == cloudsim_preset(4).model
    m = REALISTIC
    assert (m.enforce_ram, m.ram_overcommit, m.boot_delay_s, m.shutdown_s, m.off_power_w) == (True, 1.0, 180, 60, 10)
    assert not m.remove_idle_guests and m.hosts_on_with_guests and m.precopy and m.name == "realistic"
    with pytest.raises(ValueError, match="expected one of cloudsim, realistic"):
        model_preset("fantasy")


def test_a_migration_that_would_overfill_memory_is_refused_and_counted():
    # Two guests of 1740 MB on host 0, two on host 1 (4096 MB each): a third on either would exceed its RAM.
    util = np.full((4, 288), 0.2)
    result = Engine(_fleet(2, 4), util, Scripted([0, 0, 1, 1], [(0, 1)])).run()
    assert result.metrics["refused_actions"] == 1 and result.metrics["migrations"] == 0
    assert result.metrics["max_ram_ratio"] <= 1.0
    # The CloudSim preset lets the same move through (memory is asked for only at creation).
    loose = Engine(_fleet(2, 4, model=model_preset("cloudsim")), util, Scripted([0, 0, 1, 1], [(0, 1)])).run()
    assert loose.metrics["refused_actions"] == 0 and loose.metrics["max_ram_ratio"] > 1.0


def test_a_booting_host_receives_no_guest_until_it_is_up():
    util = np.full((1, 288), 0.2)
    engine = Engine(_fleet(2, 1, horizon_ticks=4), util, Scripted([0], [(0, 1)]), record_events=True)
    ends = []
    real = engine._finish_migrations_until

    def spy(t):
        before = engine.host_of[0]
        real(t)
        if engine.host_of[0] != before:
            ends.append(engine.now)
    engine._finish_migrations_until = spy
    result = engine.run()
    assert result.metrics["boots"] == 1
    start = engine.events[0][0]
    assert ends and ends[0] >= start + REALISTIC.boot_delay_s  # the copy starts once the host is up


def test_a_migration_takes_longer_when_others_share_its_nic():
    util = np.full((4, 288), 0.2)

    def finish_times(moves):
        engine = Engine(_fleet(6, 4, horizon_ticks=4), util, Scripted([0, 0, 1, 1], moves))
        engine.booting_until[:] = 0.0
        engine.shutdown_until[:] = np.inf  # destinations count as on: no boot in the way
        done = {}
        real = engine._finish_migrations_until

        def spy(t):
            before = engine.host_of.copy()
            real(t)
            for g in np.flatnonzero(engine.host_of != before):
                done[int(g)] = engine.now
        engine._finish_migrations_until = spy
        engine.run()
        return done

    alone = finish_times([(0, 2)])
    shared = finish_times([(0, 2), (1, 3)])  # both leave host 0: they share its NIC
    assert shared[0] > alone[0] + 1.0
    apart = finish_times([(0, 2), (2, 4)])  # host 1's guest leaves through another NIC
    assert apart[0] == pytest.approx(alone[0])


def test_idle_guests_stay_and_keep_their_host_on():
    util = np.zeros((2, 288))
    util[1] = 0.3
    engine = Engine(_fleet(2, 2), util, Scripted([0, 1], []))
    result = engine.run()
    assert engine.alive.all() and engine.host_of[0] == 0  # CloudSim would have dropped guest 0
    # Host 0 holds an idle guest: it draws its idle power, not 0 W (nor the 10 W of an off host).
    idle_w = HP_ML110_G5.power.watts[0]
    assert result.metrics["energy_kwh"] * 3.6e6 > 2 * 300.0 * idle_w


def test_an_emptied_host_draws_idle_power_while_it_shuts_down_then_its_off_power():
    util = np.full((1, 288), 0.2)
    engine = Engine(_fleet(2, 1, horizon_ticks=3), util, Scripted([0], [(0, 1)]))
    engine.booting_until[:] = 0.0
    engine.shutdown_until[1] = np.inf  # host 1 is on: no boot
    result = engine.run()
    assert engine.host_of[0] == 1 and np.isfinite(engine.shutdown_until[0])
    assert engine.shutdown_until[0] - REALISTIC.shutdown_s < 900.1
    assert result.metrics["energy_kwh"] > 0


def test_the_memory_aware_bound_is_below_every_policy_and_above_the_cpu_bound(planetlab_day):
    fleet = cloudsim_preset(planetlab_day.n_guests, model=REALISTIC)
    bound, cpu = fluid_bound_kwh(planetlab_day, fleet), fluid_bound_cpu_kwh(planetlab_day, fleet)
    assert bound > 5 * cpu  # memory keeps ~320 hosts on: the honest baseline
    for policy in ("lr-mmt:1.2", "presplit", "dvfs"):
        row, _ = run_simulation(planetlab_day, policy, fleet=fleet)
        assert row["energy_kwh"] >= bound, policy
        assert row["fluid_bound_cpu_kwh"] == pytest.approx(cpu) and row["model"] == "realistic"
        assert row["max_ram_ratio"] <= 1.0 and row["refused_actions"] == 0, policy
    # The CloudSim preset keeps its CPU-only bound (memory is not a limit there).
    assert fluid_bound_kwh(planetlab_day, cloudsim_preset(planetlab_day.n_guests)) == pytest.approx(cpu)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(policy=st.sampled_from(EVERY_POLICY), seed=st.integers(0, 10_000),
       hosts=st.integers(6, 14), guests=st.integers(8, 30))
def test_memory_stays_within_every_host_for_every_policy(small_day, policy, seed, hosts, guests):
    """Random fleets and demand slices: no policy gets a host past its RAM on the realistic model."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(small_day.shape[0], size=guests, replace=guests > small_day.shape[0])
    util = small_day[rows] * rng.uniform(0.5, 3.0, size=(guests, 1))
    util = np.clip(util, 0.0, 1.0)
    fleet = Fleet(host_types=(HP_ML110_G4, HP_ML110_G5), host_type_of=np.arange(hosts) % 2,
                  guest_types=CLOUDSIM_GUEST_TYPES, guest_type_of=rng.integers(0, 4, size=guests),
                  model=dataclasses.replace(REALISTIC, horizon_s=24 * 300.0 + 1.0))
    engine = Engine(fleet, util, make_policy(policy, seed=seed))
    checked = []
    real = engine._update

    def update(t, **kw):
        real(t, **kw)
        used = np.bincount(engine.host_of[engine.host_of >= 0], engine.g_ram[engine.host_of >= 0],
                           minlength=hosts)
        for g, dst in engine.incoming:
            used[dst] += engine.g_ram[g]
        assert np.all(used <= engine.ram_cap + 1e-6), (t, used, engine.ram_cap)
        assert np.allclose(used, engine.ram_used)
        checked.append(t)
    engine._update = update
    result = engine.run()
    assert checked and result.metrics["max_ram_ratio"] <= 1.0 + 1e-9


@pytest.mark.parametrize("policy", ["dvfs", "lr-mmt:1.2", "presplit"])
def test_a_guest_no_host_can_hold_waits_and_its_demand_counts_as_unserved(policy):
    util = np.full((3, 288), 0.2)
    result = Engine(_fleet(1, 3), util, make_policy(policy)).run()  # 3 x 1740 MB on one 4096 MB host
    m = result.metrics
    assert m["guests_unplaced"] == 1 and m["max_ram_ratio"] <= 1.0
    assert m["overall_sla_violation"] == pytest.approx(1 / 3, rel=0.05)
    with pytest.raises(RuntimeError, match="fleet is too small"):  # CloudSim's model has no waiting room
        Engine(_fleet(1, 3, model=model_preset("cloudsim")), util, Scripted([], [])).wait(2)


class RandomMoves:
    """Asks for the drawn moves, tick after tick, whatever they do to memory: the engine must refuse overfills."""

    migrates = True
    non_power_aware = False

    def __init__(self, placement, ticks):
        self.placement, self.ticks, self.k = placement, ticks, 0

    def place_initial(self, engine):
        for g, h in enumerate(self.placement):
            if engine.ram_free[h] >= engine.g_ram[g]:
                engine.create(g, h)
            else:
                engine.wait(g)

    def optimise(self, engine):
        moves = self.ticks[self.k] if self.k < len(self.ticks) else []
        self.k += 1
        return [(g, h) for g, h in moves if engine.host_of[g] >= 0 and not engine.in_migration[g]
                and engine.host_of[g] != h]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), hosts=st.integers(2, 6), guests=st.integers(2, 12))
def test_the_engine_refuses_any_move_that_would_overfill_memory(data, hosts, guests):
    placement = data.draw(st.lists(st.integers(0, hosts - 1), min_size=guests, max_size=guests))
    move = st.tuples(st.integers(0, guests - 1), st.integers(0, hosts - 1))
    ticks = data.draw(st.lists(st.lists(move, max_size=6), min_size=1, max_size=6))
    fleet = Fleet(host_types=(HP_ML110_G4,), host_type_of=np.zeros(hosts, dtype=np.int64),
                  guest_types=CLOUDSIM_GUEST_TYPES, guest_type_of=np.arange(guests) % 4,
                  model=dataclasses.replace(REALISTIC, horizon_s=8 * 300.0 + 1.0))
    engine = Engine(fleet, np.full((guests, 288), 0.3), RandomMoves(placement, ticks))
    result = engine.run()
    assert result.metrics["max_ram_ratio"] <= 1.0 + 1e-9
    assert np.all(engine.ram_used <= engine.ram_cap + 1e-6)
    asked = sum(len(t) for t in ticks)
    assert result.metrics["migrations"] + result.metrics["refused_actions"] <= asked
