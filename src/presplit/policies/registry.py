"""Policy names as the command line spells them, and the factories behind them.

Baselines are ``npa``, ``dvfs`` and ``DETECTOR-SELECTOR[:PARAM]`` with
detectors thr, iqr, mad, lr, lrr and selectors mmt, mu, mc, rs (e.g.
``lr-mmt:1.2``); the parameter defaults to the value of the CloudSim examples.
"""

from __future__ import annotations

from presplit.errors import InputError
from presplit.policies.cloudsim.baselines import DetectAndConsolidate, FirstFit
from presplit.policies.presplit.consolidation import PredictiveConsolidation
from presplit.policies.cloudsim.detectors import (
    InterQuartileRange,
    LocalRegression,
    MedianAbsoluteDeviation,
    Threshold,
)
from presplit.policies.cloudsim.selectors import (
    MaximumCorrelation,
    MinimumMigrationTime,
    MinimumUtilisation,
    RandomSelection,
)

DETECTORS = {
    "thr": (Threshold, 0.8),
    "iqr": (InterQuartileRange, 1.5),
    "mad": (MedianAbsoluteDeviation, 2.5),
    "lr": (LocalRegression, 1.2),
    "lrr": (LocalRegression, 1.2),  # robust weights are never applied in CloudSim 3.0.3
}
SELECTORS = {
    "mmt": MinimumMigrationTime,
    "mu": MinimumUtilisation,
    "mc": MaximumCorrelation,
    "rs": RandomSelection,
}
SIMPLE = {"npa": lambda: FirstFit(non_power_aware=True), "dvfs": lambda: FirstFit(),
          "presplit": lambda: PredictiveConsolidation()}


def _evacuate():
    from presplit.policies.evacuate import EvacuatePolicy

    return EvacuatePolicy()


def _presplit_domains():
    from presplit.policies.presplit.domains import DomainPresplit

    return DomainPresplit()


# Policies of the split-domain engine (presplit.sim.domain_engine): ``propose(state, forecasts, now)``.
# Their objects say so with ``kind = "domains"``; CloudSim-engine policies have no ``kind``.
# ``presplit`` exists on both engines: which one runs is the scenario's choice.
DOMAIN_POLICIES = {"evacuate": _evacuate, "presplit": _presplit_domains}


def engines(name: str) -> tuple[str, ...]:
    """The engines a policy name runs on: ``"cloudsim"``, ``"domains"`` or both."""
    key = name.strip().lower()
    out = ("domains",) if key in DOMAIN_POLICIES else ()
    if key not in DOMAIN_POLICIES or key in SIMPLE:
        out = ("cloudsim",) + out
    return out


def policy_kind(name: str) -> str:
    """The engine a policy name runs on when it runs on one only; ``"cloudsim"`` for names on both."""
    return engines(name)[0]


class PolicyError(InputError):
    pass


CLOUDSIM_POLICY_TEXT = "npa, dvfs, presplit or DETECTOR-SELECTOR[:PARAM] (e.g. lr-mmt:1.2)"


def engine_mismatch(name: str, scenario: str, engine: str, *, other_scenarios: list[str] | tuple = ()) -> str:
    """Why policy ``name`` cannot run on ``scenario`` (whose engine is ``engine``), and what would fit.

    ``other_scenarios``: scenarios of the policy's own engine, to suggest.
    """
    suggest = ", ".join(other_scenarios)
    if engine == "cloudsim":
        where = suggest or "a YAML file with engine: domains"
        return (f"policy {name!r} runs on the domain engine only, but scenario {scenario!r} runs on the CloudSim "
                f"engine, whose policies are {CLOUDSIM_POLICY_TEXT}; run {name!r} with a domain scenario "
                f"(--scenario {where})")
    where = suggest or "cloudsim"
    return (f"policy {name!r} runs on the CloudSim engine only, but scenario {scenario!r} runs on the domain "
            f"engine, whose policies are: {', '.join(DOMAIN_POLICIES)}; run {name!r} with a CloudSim scenario "
            f"(--scenario {where})")


def policy_names() -> list[str]:
    return list(SIMPLE) + [f"{d}-{s}:{p}" for d, (_, p) in DETECTORS.items() for s in SELECTORS]


def make_policy(name: str, *, seed: int = 0, engine: str = "cloudsim"):
    """Build a fresh policy object from its command-line name, for the given engine."""
    key = name.strip().lower()
    if engine not in ("cloudsim", "domains"):
        raise PolicyError(f"unknown engine {engine!r}: expected 'cloudsim' or 'domains'")
    if key in DOMAIN_POLICIES and (engine == "domains" or key not in SIMPLE):
        return DOMAIN_POLICIES[key]()
    if key in SIMPLE:
        return SIMPLE[key]()
    spec, _, param = key.partition(":")
    det_name, _, sel_name = spec.partition("-")
    if det_name not in DETECTORS or sel_name not in SELECTORS:
        raise PolicyError(
            f"unknown policy {name!r}: expected npa, dvfs or DETECTOR-SELECTOR[:PARAM] with detector in "
            f"{', '.join(DETECTORS)} and selector in {', '.join(SELECTORS)} (e.g. lr-mmt:1.2)")
    cls, default = DETECTORS[det_name]
    try:
        value = float(param) if param else default
    except ValueError:
        raise PolicyError(f"policy {name!r}: parameter {param!r} is not a number") from None
    try:
        detector = cls(value)
    except ValueError as exc:
        raise PolicyError(f"policy {name!r}: {exc}") from None
    selector = SELECTORS[sel_name](seed) if sel_name == "rs" else SELECTORS[sel_name]()
    return DetectAndConsolidate(detector, selector)
