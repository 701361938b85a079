"""The backends' optional capabilities are declared protocols, and each world states the ones it has."""

from __future__ import annotations

from apply_support import synthetic_day

from presplit.backends.base import (
    Advances,
    Backend,
    Closes,
    Finishes,
    HasConditions,
    KeepsMetrics,
    Orders,
    ReplaysDemand,
    ReportsReady,
    Resumes,
    Summarises,
    TakesChanges,
)
from presplit.backends.cloudsim_world import CloudSimWorld
from presplit.backends.sim_world import FaultyBackend, create_world
from presplit.model.hardware import cloudsim_preset
from presplit.scenarios import load_scenario
from presplit.service.demo import demo_scenario
from presplit.traces import load_trace


def test_the_stored_world_and_its_faulty_wrapper_declare_what_they_can_do(tmp_path):
    world = create_world(tmp_path / "w.db", load_scenario(str(demo_scenario(tmp_path / "scen"))))
    try:
        for backend in (world, FaultyBackend(world, 0.5)):
            assert isinstance(backend, Backend)
            for cap in (Advances, Finishes, KeepsMetrics, ReportsReady, ReplaysDemand, Closes):
                assert isinstance(backend, cap), cap.__name__
        assert isinstance(world, TakesChanges)
        for cap in (Orders, Summarises, HasConditions, Resumes):
            assert not isinstance(world, cap), cap.__name__
    finally:
        world.close()


def test_the_cloudsim_world_orders_summarises_and_resumes_itself(tmp_path):
    workload = load_trace(synthetic_day(tmp_path / "day", n_vms=8, seed=1))
    world = CloudSimWorld(workload, "lr-mmt:1.2", fleet=cloudsim_preset(workload.n_guests, n_hosts=6))
    for cap in (Backend, Advances, Finishes, KeepsMetrics, Orders, Summarises, HasConditions, Resumes):
        assert isinstance(world, cap), cap.__name__
    for cap in (ReportsReady, ReplaysDemand, TakesChanges):
        assert not isinstance(world, cap), cap.__name__
