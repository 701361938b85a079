"""Failures on the CloudSim engine: host crashes and restarts, failed migrations, seeds, the refused kinds."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from presplit.cli.main import cli
from presplit.errors import InputError
from presplit.model import SimModel, cloudsim_preset
from presplit.model.hardware import HP_ML110_G5, Fleet, GuestType
from presplit.policies import make_policy
from presplit.sim.engine import Engine
from presplit.sim.failures import FailureSpec, TimedFailure, check_cloudsim_spec, parse_failures

MIPS, RAM = 2500.0, 1740.0


class Scripted:
    """Guest g on host placement[g]; the given moves at the first tick."""

    migrates = True
    non_power_aware = False

    def __init__(self, placement, moves=()):
        self.placement, self.moves, self.done = placement, list(moves), False

    def place_initial(self, engine):
        for g, h in enumerate(self.placement):
            engine.create(g, h)

    def optimise(self, engine):
        if self.done:
            return []
        self.done = True
        return self.moves


def _fleet(n_hosts, n_guests, **model):
    return Fleet(host_types=(HP_ML110_G5,), host_type_of=np.zeros(n_hosts, dtype=np.int64),
                 guest_types=(GuestType("g", MIPS, 1, RAM, 100.0),),
                 guest_type_of=np.zeros(n_guests, dtype=np.int64),
                 model=SimModel(horizon_s=6 * 300.0 + 1.0, **model))


def crash(host, at, **kw):
    return FailureSpec(events=(TimedFailure(at, "host", host=str(host)),), **kw)


def test_host_crash_stops_exactly_its_guests_and_restarts_them_after_detection_and_boot():
    util = np.full((4, 288), 0.3)
    policy = Scripted([0, 0, 1, 1])
    plain = Engine(_fleet(3, 4), util, Scripted([0, 0, 1, 1])).run().metrics
    e = Engine(_fleet(3, 4), util, policy, failures=crash(0, 1000.0))
    m = e.run().metrics
    f = e.fail
    assert m["failures_injected"] == 1 and m["guests_lost"] == 0 and m["failover_restarts"] == 2
    assert sorted(r.guest for r in f.closed) == [0, 1]  # exactly host 0's guests
    assert all(r.failed_at == 1000.0 and r.up_at == 1000.0 + 30.0 + 60.0 for r in f.closed)
    assert m["failover_max_s"] == m["failover_p95_s"] == 90.0 and m["failure_downtime_s"] == 180.0
    # First fit (no restart_target): the first running host with room; host 0 is empty (and down until repaired).
    assert e.host_of.tolist() == [1, 1, 1, 1] and e.lists[0] == [] and f.down_until[0] == 1000.0 + 4 * 3600.0
    # Their demand for those 90 s is requested and not served.
    unserved = m["overall_sla_violation"] * m["served_mips_s"] - plain["overall_sla_violation"] * plain["served_mips_s"]
    assert unserved == pytest.approx(2 * 0.3 * MIPS * 90.0)


def test_a_crashed_host_takes_no_migration_until_repaired_and_a_restart_wakes_an_off_host():
    util = np.full((3, 288), 0.9)  # 2250 MIPS each: host 1 (4500 of 5320) has no room for guest 0, host 2 is off
    e = Engine(_fleet(3, 3), util, Scripted([0, 1, 1]), failures=crash(0, 1000.0))
    m = e.run().metrics
    assert m["guests_lost"] == 0 and e.host_of.tolist() == [2, 1, 1]
    util = np.full((2, 288), 0.9)
    refused = Engine(_fleet(3, 2), util, Scripted([0, 1], moves=[(1, 0)]),
                     failures=crash(0, 100.0, guest_boot_s=0.0)).run().metrics
    assert refused["refused_actions"] == 1  # the policy asked for the crashed host


def test_failed_migration_leaves_the_guest_at_its_source_and_frees_the_destination_ram():
    util = np.full((2, 288), 0.3)
    fleet = _fleet(3, 2, enforce_ram=True)
    e = Engine(fleet, util, Scripted([0, 0], moves=[(0, 1)]), failures=FailureSpec(migration_p=1.0, seed=2),
               record_events=True)
    m = e.run().metrics
    assert m["migrations"] == 1 and m["migrations_failed"] == 1 and m["failures_injected"] == 0
    assert e.host_of.tolist() == [0, 0] and e.lists[1] == [] and e.ram_used[1] == 0.0 and e.count[1] == 0
    assert e.ram_used[0] == 2 * RAM and not e.in_migration.any() and e.incoming == []


def test_a_crashed_destination_fails_the_migration_in_and_a_crashed_source_stops_its_guest():
    util = np.full((2, 288), 0.3)
    # The move starts at 300.1 and copies 1740 MB at 62.5 MB/s (27.8 s): crash inside it.
    e = Engine(_fleet(3, 2), util, Scripted([0, 1], moves=[(0, 1)]), failures=crash(1, 310.0))
    m = e.run().metrics
    assert m["migrations_failed"] == 1 and m["guests_lost"] == 0
    assert e.host_of[0] == 0 and [r.guest for r in e.fail.closed] == [1]
    e = Engine(_fleet(3, 2), util, Scripted([0, 1], moves=[(0, 1)]), failures=crash(0, 310.0))
    m = e.run().metrics
    assert [r.guest for r in e.fail.closed] == [0] and e.host_of[0] == 1 and e.lists[2] == []


def test_no_failures_gives_identical_metrics_and_a_seed_gives_the_same_run(small_day):
    fleet = cloudsim_preset(small_day.shape[0], n_hosts=120)
    base = Engine(fleet, small_day, make_policy("lr-mmt:1.2")).run().metrics
    assert Engine(fleet, small_day, make_policy("lr-mmt:1.2"), failures=FailureSpec(seed=9)).run().metrics == base
    spec = FailureSpec(host_per_day=12.0, migration_p=0.02, seed=3)
    a = Engine(fleet, small_day, make_policy("lr-mmt:1.2"), failures=spec).run().metrics
    b = Engine(fleet, small_day, make_policy("lr-mmt:1.2"), failures=spec).run().metrics
    other = Engine(fleet, small_day, make_policy("lr-mmt:1.2"),
                   failures=FailureSpec(host_per_day=12.0, migration_p=0.02, seed=4)).run().metrics
    assert a == b and a != other
    assert a["failures_injected"] > 5 and a["migrations_failed"] > 0 and a["guests_lost"] == 0
    assert a["failover_restarts"] > 0 and a["failover_max_s"] >= 90.0


@pytest.mark.parametrize("model", ["cloudsim", "realistic"])
def test_presplit_restarts_where_its_forecast_fits(small_day, model):
    from presplit.model.hardware import model_preset

    fleet = cloudsim_preset(small_day.shape[0], n_hosts=120, model=model_preset(model))
    policy = make_policy("presplit")
    chosen = []
    target = policy.restart_target

    def spy(engine, guest):
        h = target(engine, guest)
        chosen.append(h)
        return h

    policy.restart_target = spy
    m = Engine(fleet, small_day, policy, failures=FailureSpec(host_per_day=12.0, seed=1)).run().metrics
    assert m["guests_lost"] == 0 and m["failover_restarts"] > 0 and chosen and None not in chosen


def test_the_refused_kinds_say_why_in_one_line():
    for text, why in (("host=2/day,link=1/day", "network fabric"), ("domain=3/day", "one domain per host")):
        with pytest.raises(InputError, match=why) as info:
            check_cloudsim_spec(parse_failures(text))
        assert "\n" not in str(info.value)
    result = CliRunner().invoke(cli, ["simulate", "--scenario", "cloudsim", "--failures", "link=1/day",
                                      "--policy", "dvfs"])
    assert result.exit_code != 0 and "network fabric" in result.output
    assert len([x for x in result.output.strip().splitlines() if x.strip()]) == 1


def test_cli_reports_the_failure_keys_on_the_cloudsim_engine():
    import json

    result = CliRunner().invoke(cli, ["simulate", "--scenario", "cloudsim", "--failures", "host=6/day,seed=1",
                                      "--policy", "dvfs", "--json", "-"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output)[0]
    assert row["failures_injected"] > 0 and row["guests_lost"] == 0 and row["failover_restarts"] > 0
