"""Named simulation scenarios: a fleet to run on and the traces to run when none are given.

Two engines. ``resolve_scenario("cloudsim")`` is CloudSim's PlanetLab set-up
for the CloudSim engine: 800 hosts alternating HP ProLiant ML110 G4/G5 and the
four CloudSim VM types, with the bundled PlanetLab day 20110303 as the default
trace. :func:`load_scenario` reads a scenario file, or a shipped one by name
(``cloudsim``, ``bighost-patch``: see :mod:`presplit.scenarios.loader`); a
file whose ``engine`` is ``cloudsim`` resolves to the same preset, one whose
engine is ``domains`` runs on :mod:`presplit.sim.domain_engine`
(:func:`presplit.scenarios.build.run_scenario`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from importlib.resources import files
from pathlib import Path

from presplit.errors import InputError
from presplit.model.hardware import Fleet, cloudsim_preset, preset_fleet

FleetFactory = Callable[[int], Fleet]
"""Builds the fleet for a workload with the given number of guests."""

SCENARIO_FILE_SUFFIXES = (".yaml", ".yml")


class ScenarioError(InputError):
    """Unknown scenario name, or a scenario that does not suit the caller's engine."""


def bundled_planetlab_day(day: str) -> Path:
    """Folder of a PlanetLab day shipped as package data (e.g. ``"20110303"``)."""
    return Path(str(files("presplit") / "data" / "planetlab" / day))


def _cloudsim() -> tuple[FleetFactory, list[Path]]:
    return cloudsim_preset, [bundled_planetlab_day("20110303")]


def _bitbrains() -> tuple[FleetFactory, list[Path]]:
    from presplit.scenarios.trace_fleet import TraceFleet

    return TraceFleet(), [Path(str(files("presplit") / "data" / "bitbrains" / "rnd_2013-7_first7d.parquet"))]


SCENARIOS: dict[str, Callable[[], tuple[FleetFactory, list[Path]]]] = {
    "cloudsim": _cloudsim,
    # The Bitbrains week on CloudSim-like 16 GB hosts, realistic model (presplit.scenarios.trace_fleet).
    "bitbrains": _bitbrains,
}


def scenario_names() -> list[str]:
    return sorted(SCENARIOS)


def _looks_like_path(name: str) -> bool:
    return (name.lower().endswith(SCENARIO_FILE_SUFFIXES) or "/" in name or "\\" in name
            or Path(name).exists())


def resolve_scenario(name: str) -> tuple[FleetFactory, list[Path]]:
    """Return ``(fleet_factory, default_traces)`` for a CloudSim-engine scenario (name or file).

    ``fleet_factory(n_guests)`` builds the fleet for a workload; the default
    traces are the paths to run when the user names none. Domain scenarios are
    refused here: load them with :func:`load_scenario`.
    """
    key = name.strip().lower()
    if key in SCENARIOS:
        return SCENARIOS[key]()
    scenario = load_scenario(name)
    if scenario.engine != "cloudsim":
        raise ScenarioError(f"{name!r} is a {scenario.engine!r} scenario: it runs on the domain engine "
                            "(presplit.scenarios.load_scenario), not the CloudSim engine")
    traces = [f.trace for f in scenario.feeds if f.trace is not None]
    factory = cloudsim_preset if scenario.model_preset == "cloudsim" else partial(preset_fleet,
                                                                                   model=scenario.model_preset)
    return factory, traces or SCENARIOS["cloudsim"]()[1]


def load_scenario(name: str):
    """A :class:`~presplit.scenarios.loader.Scenario` from a shipped name (``bighost-patch``) or a YAML path."""
    from presplit.scenarios.loader import ScenarioFileError, load_scenario_file, shipped_scenarios

    text = name.strip()
    shipped = shipped_scenarios()
    try:
        if text.lower() in shipped:
            return load_scenario_file(shipped[text.lower()])
        if _looks_like_path(text):
            return load_scenario_file(Path(text))
    except ScenarioFileError as exc:
        raise ScenarioError(str(exc)) from exc
    known = sorted(set(scenario_names()) | set(shipped))
    raise ScenarioError(f"unknown scenario {name!r}; known scenarios: {', '.join(known)} (or a .yaml file)")
