"""Named simulation scenarios: a fleet to run on and the traces to run when none are given.

``resolve_scenario("cloudsim")`` is CloudSim's PlanetLab set-up: 800 hosts
alternating HP ProLiant ML110 G4/G5 and the four CloudSim VM types, with the
bundled PlanetLab day 20110303 as the default trace. Scenario files (YAML)
will later be accepted as well; for now a path is rejected with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from presplit.model.hardware import Fleet, cloudsim_preset

FleetFactory = Callable[[int], Fleet]
"""Builds the fleet for a workload with the given number of guests."""

SCENARIO_FILE_SUFFIXES = (".yaml", ".yml")


class ScenarioError(ValueError):
    """Unknown scenario name, or a scenario file (not yet supported)."""


def bundled_planetlab_day(day: str) -> Path:
    """Folder of a PlanetLab day shipped as package data (e.g. ``"20110303"``)."""
    return Path(str(files("presplit") / "data" / "planetlab" / day))


def _cloudsim() -> tuple[FleetFactory, list[Path]]:
    return cloudsim_preset, [bundled_planetlab_day("20110303")]


SCENARIOS: dict[str, Callable[[], tuple[FleetFactory, list[Path]]]] = {
    "cloudsim": _cloudsim,
}


def scenario_names() -> list[str]:
    return sorted(SCENARIOS)


def _looks_like_path(name: str) -> bool:
    return (name.lower().endswith(SCENARIO_FILE_SUFFIXES) or "/" in name or "\\" in name
            or Path(name).exists())


def resolve_scenario(name: str) -> tuple[FleetFactory, list[Path]]:
    """Return ``(fleet_factory, default_traces)`` for a scenario name.

    ``fleet_factory(n_guests)`` builds the fleet for a workload; the default
    traces are the paths to run when the user names none.
    """
    key = name.strip().lower()
    if key in SCENARIOS:
        return SCENARIOS[key]()
    if _looks_like_path(name.strip()):
        raise ScenarioError(f"{name!r}: not yet supported: scenario files; "
                            f"use a built-in scenario ({', '.join(scenario_names())})")
    raise ScenarioError(f"unknown scenario {name!r}; known scenarios: {', '.join(scenario_names())}")
