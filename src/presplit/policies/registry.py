"""Policy names as the command line spells them, and the factories behind them.

Built-in policies sit in two :class:`~presplit.registry.Registry` tables, one
per engine, each name with a one-line summary:

* :data:`CLOUDSIM_POLICIES` (the CloudSim-compatible engine: ``cloudsim``
  scenarios, sweeps): ``npa``, ``dvfs`` and ``presplit-consolidate``
  (presplit's predictive consolidation for a fleet with nothing to split);
* :data:`DOMAIN_POLICIES` (the split-domain engine): ``presplit`` (predictive
  domain splitting) and ``evacuate`` (maintenance mode).

``presplit`` is also what scripts, profiles and published figures call the
CloudSim-fleet policy, so on the CloudSim engine it stands for
``presplit-consolidate`` (:data:`CLOUDSIM_ALIASES`); rows keep the name the
user gave.

Baselines are ``DETECTOR-SELECTOR[:PARAM]`` with detectors thr, iqr, mad, lr,
lrr and selectors mmt, mu, mc, rs (e.g. ``lr-mmt:1.2``); the parameter
defaults to the value of the CloudSim examples.

Plugins (see :mod:`presplit.policies.api`) are named ``path/to/file.py:Class``,
``package.module:Class`` or by the name of an entry point in the
``presplit.policies`` group (:data:`PLUGINS`); built-in names win over entry
points. Every failure to load one is a :class:`PolicyError` of one line
naming the spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from presplit.errors import InputError
from presplit.policies.cloudsim.baselines import DetectAndConsolidate, FirstFit
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
from presplit.policies.presplit.consolidation import PredictiveConsolidation
from presplit.registry import Registry, entry_point_origin, short_error

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

ENTRY_POINT_GROUP = "presplit.policies"
ENGINE_WORDS = {"cloudsim": "CloudSim", "domains": "domain"}


class PolicyError(InputError):
    pass


def _evacuate():
    from presplit.policies.evacuate import EvacuatePolicy

    return EvacuatePolicy()


def _presplit_domains():
    from presplit.policies.presplit.domains import DomainPresplit

    return DomainPresplit()


# Policies of the CloudSim-compatible engine (presplit.sim.engine): place_initial(engine), optimise(engine).
CLOUDSIM_POLICIES: Registry = Registry("CloudSim-engine policy", error=PolicyError)
CLOUDSIM_POLICIES.register("npa", lambda: FirstFit(non_power_aware=True),
                           summary="first fit, no migrations, every host billed at full power (CloudSim's NPA)")
CLOUDSIM_POLICIES.register("dvfs", lambda: FirstFit(),
                           summary="first fit, no migrations, power follows utilisation (CloudSim's DVFS)")
CLOUDSIM_POLICIES.register("presplit-consolidate", PredictiveConsolidation,
                           summary="presplit on a fleet with nothing to split: predictive consolidation "
                                   "(forecast-driven relief, best-fit placement, draining)")

# What a name stands for on the CloudSim engine. ``presplit`` there is the CloudSim-fleet policy, as
# scripts/claims.py, scripts/parity.py, profiles and the published figures call it.
CLOUDSIM_ALIASES = {"presplit": "presplit-consolidate"}

# Policies of the split-domain engine (presplit.sim.domain_engine): ``propose(state, forecasts, now)``.
# Their objects say so with ``kind = "domains"``. The order is the order a domain scenario runs them in
# when no --policy is given.
DOMAIN_POLICIES: Registry = Registry("domain-engine policy", error=PolicyError)
DOMAIN_POLICIES.register("evacuate", _evacuate,
                         summary="maintenance mode: evacuate hosts in their patch window; reactive balancing; "
                                 "DPM-like power-off")
DOMAIN_POLICIES.register("presplit", _presplit_domains,
                         summary="predictive domain splitting: split ahead of demand and patch windows, place, "
                                 "re-pin, migrate, recombine")

# Installed plugins: entry points of the presplit.policies group (loaded by find_plugin, which checks the class).
PLUGINS: Registry = Registry("policy", group=ENTRY_POINT_GROUP, error=PolicyError)


# --------------------------------------------------------------------------- plugins

_FILE_SPEC = re.compile(r"^(?P<path>.+\.py):(?P<cls>[^:]*)$")
_MODULE_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<cls>[A-Za-z_]\w*)$")


@dataclass(frozen=True)
class Plugin:
    """A policy class from outside presplit: where it came from and the engines it runs on."""

    name: str  # as the user spelt it: the policy's name in tables, rows and profiles
    cls: type
    engines: tuple[str, ...]
    origin: str  # "file /abs/path.py", "module pkg.mod" or "entry point NAME = VALUE (dist)"
    portable: str  # the spelling another process loads the same class by (a file spec made absolute)

    def build(self, seed: int = 0):
        """A fresh policy object: ``cls()``, or ``cls(seed=seed)`` when the class takes a seed."""
        try:
            takes_seed = "seed" in inspect.signature(self.cls).parameters
        except (TypeError, ValueError):
            takes_seed = False
        try:
            return self.cls(seed=seed) if takes_seed else self.cls()
        except Exception as exc:  # noqa: BLE001 - the plugin's own failure, reported as the user's input
            raise PolicyError(f"policy {self.name!r}: {self.cls.__name__}() failed: {type(exc).__name__}: "
                              f"{short_error(exc)} (a policy class is built without arguments: give every "
                              "parameter a default)") from None


_LOADED: dict[tuple, Plugin] = {}  # loaded once per process; ``name`` is replaced by each caller's spelling


def is_builtin(name: str) -> bool:
    """``name`` is a built-in policy name (possibly with a bad parameter, e.g. ``thr-mmt:abc``)."""
    key = name.strip().lower()
    if key in CLOUDSIM_POLICIES or key in CLOUDSIM_ALIASES or key in DOMAIN_POLICIES:
        return True
    det, _, sel = key.partition(":")[0].partition("-")
    return det in DETECTORS and sel in SELECTORS


def entry_points() -> dict:
    """Installed plugins: entry-point name -> ``importlib.metadata.EntryPoint`` of group ``presplit.policies``."""
    return PLUGINS.entry_points()


def find_plugin(name: str) -> Plugin | None:
    """The plugin ``name`` spells (file, module or entry point), or None for built-in and unknown names.

    Raises :class:`PolicyError` (one line naming the spec) when it is a plugin spec that cannot be
    loaded: file not found, import failed, no such class, not a policy.
    """
    raw = name.strip()
    if is_builtin(raw):
        return None
    m = _FILE_SPEC.match(raw)
    if m:
        return _from_file(raw, m["path"], m["cls"])
    if raw.endswith(".py"):
        raise PolicyError(f"policy {raw!r}: name the class to run: expected FILE.py:Class (e.g. {raw}:MyPolicy)")
    m = _MODULE_SPEC.match(raw)
    if m:
        return _from_module(raw, m["module"], m["cls"])
    eps = entry_points()
    ep = eps.get(raw) or next((e for n, e in eps.items() if n.lower() == raw.lower()), None)
    if ep is not None:
        return _from_entry_point(raw, ep)
    return None


def _from_file(raw: str, path: str, cls_name: str) -> Plugin:
    if not cls_name.isidentifier():
        raise PolicyError(f"policy {raw!r}: {cls_name!r} is not a class name (expected FILE.py:Class)")
    file = Path(path).expanduser()
    absolute = file.resolve()
    if not absolute.exists():
        raise PolicyError(f"policy {raw!r}: file {path} not found (expected FILE.py:Class; a relative path is "
                          f"relative to the current folder, {Path.cwd()})")
    if not absolute.is_file():
        raise PolicyError(f"policy {raw!r}: {path} is not a file (expected FILE.py:Class)")
    stamp = absolute.stat().st_mtime_ns
    key = ("file", str(absolute), stamp, cls_name)
    if key in _LOADED:
        return dataclasses.replace(_LOADED[key], name=raw)
    digest = hashlib.sha1(str(absolute).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", absolute.stem)
    module_name = f"presplit_plugin_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, absolute)
    if spec is None or spec.loader is None:
        raise PolicyError(f"policy {raw!r}: {path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise PolicyError(f"policy {raw!r}: {path}:{exc.lineno}: syntax error: {exc.msg}") from None
    except Exception as exc:  # noqa: BLE001
        sys.modules.pop(module_name, None)
        raise PolicyError(f"policy {raw!r}: importing {path} failed: {type(exc).__name__}: {short_error(exc)}") from None
    cls = _class_in(module, cls_name, raw, path)
    plugin = Plugin(raw, cls, _engines_of(cls, raw), f"file {absolute}", f"{absolute}:{cls_name}")
    _LOADED[key] = plugin
    return plugin


def _from_module(raw: str, module_name: str, cls_name: str) -> Plugin:
    key = ("module", module_name, cls_name)
    if key in _LOADED:
        return dataclasses.replace(_LOADED[key], name=raw)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise PolicyError(f"policy {raw!r}: no module named {exc.name!r} on the Python path (expected "
                              "package.module:Class of an importable module, or FILE.py:Class)") from None
        raise PolicyError(f"policy {raw!r}: importing {module_name} failed: {type(exc).__name__}: "
                          f"{short_error(exc)}") from None
    except Exception as exc:  # noqa: BLE001
        raise PolicyError(f"policy {raw!r}: importing {module_name} failed: {type(exc).__name__}: "
                          f"{short_error(exc)}") from None
    cls = _class_in(module, cls_name, raw, f"module {module_name}")
    plugin = Plugin(raw, cls, _engines_of(cls, raw), f"module {module_name}", raw)
    _LOADED[key] = plugin
    return plugin


def _from_entry_point(raw: str, ep) -> Plugin:
    key = ("entry point", ep.name, ep.value)
    if key in _LOADED:
        return dataclasses.replace(_LOADED[key], name=raw)
    origin = entry_point_origin(ep)
    try:
        module = importlib.import_module(ep.module)
    except Exception as exc:  # noqa: BLE001
        raise PolicyError(f"policy {raw!r}: loading {origin} failed: {type(exc).__name__}: {short_error(exc)}") from None
    if ep.attr and "." not in ep.attr:
        cls = _class_in(module, ep.attr, raw, f"module {ep.module} ({origin})")
    else:
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001
            raise PolicyError(f"policy {raw!r}: loading {origin} failed: {type(exc).__name__}: "
                              f"{short_error(exc)}") from None
        if not isinstance(cls, type):
            raise PolicyError(f"policy {raw!r}: {origin} is a {type(cls).__name__}, not a class")
    plugin = Plugin(raw, cls, _engines_of(cls, raw), origin, raw)
    _LOADED[key] = plugin
    return plugin


def _class_in(module, cls_name: str, raw: str, where: str) -> type:
    obj = getattr(module, cls_name, None)
    if obj is None:
        defined = [n for n, v in vars(module).items()
                   if isinstance(v, type) and getattr(v, "__module__", None) == module.__name__]
        raise PolicyError(f"policy {raw!r}: {where} has no class {cls_name!r}"
                          + (f" (it defines {', '.join(defined)})" if defined else ""))
    if not isinstance(obj, type):
        raise PolicyError(f"policy {raw!r}: {cls_name} in {where} is a {type(obj).__name__}, not a class")
    return obj


def _engines_of(cls: type, raw: str) -> tuple[str, ...]:
    """The engines ``cls`` declares (``engine``, else ``kind``), checked against what it implements."""
    from presplit.policies.api import ENGINES, missing

    declared = getattr(cls, "engine", None)
    if declared is None and getattr(cls, "kind", None) in ENGINES:
        declared = cls.kind
    if declared is None:
        found = tuple(e for e in ENGINES if not missing(cls, e))
        if not found:
            raise PolicyError(
                f"policy {raw!r}: class {cls.__name__} is not a policy: it has neither propose(state, forecasts, now) "
                "(domain engine) nor place_initial(engine), optimise(engine) and migrates (CloudSim engine); "
                "declare engine = 'cloudsim' or 'domains' and see presplit.policies.api")
        return found
    values = (declared,) if isinstance(declared, str) else declared
    if (not isinstance(values, (tuple, list)) or not values
            or any(not isinstance(v, str) or v not in ENGINES for v in values)):
        raise PolicyError(f"policy {raw!r}: class {cls.__name__} declares engine = {declared!r}; expected "
                          "'cloudsim', 'domains' or ('cloudsim', 'domains')")
    for engine in values:
        lacks = missing(cls, engine)
        if lacks:
            proto = "CloudSimEnginePolicy" if engine == "cloudsim" else "DomainEnginePolicy"
            raise PolicyError(f"policy {raw!r}: class {cls.__name__} declares engine = {engine!r} but is not a "
                              f"{ENGINE_WORDS[engine]}-engine policy: it lacks {' and '.join(lacks)} "
                              f"(see presplit.policies.api.{proto})")
    return tuple(dict.fromkeys(values))


def portable_name(name: str) -> str:
    """How another process (a Dask worker) loads policy ``name``: a file spec made absolute, else ``name``."""
    plugin = find_plugin(name)
    return plugin.portable if plugin is not None else name


# --------------------------------------------------------------------------- names


def engines(name: str) -> tuple[str, ...]:
    """The engines a policy name runs on: ``"cloudsim"``, ``"domains"`` or both.

    A plugin's are what its class declares (a plugin that cannot be loaded raises PolicyError).
    """
    key = name.strip().lower()
    if not is_builtin(key):
        plugin = find_plugin(name)
        if plugin is not None:
            return plugin.engines
    out = ("domains",) if key in DOMAIN_POLICIES else ()
    if key not in DOMAIN_POLICIES or key in CLOUDSIM_POLICIES or key in CLOUDSIM_ALIASES:
        out = ("cloudsim",) + out
    return out


def policy_kind(name: str) -> str:
    """The engine a policy name runs on when it runs on one only; ``"cloudsim"`` for names on both."""
    return engines(name)[0]


PLUGIN_TEXT = "FILE.py:Class or module:Class (a plugin class, see presplit policies)"
CLOUDSIM_POLICY_TEXT = ("npa, dvfs, presplit (there: presplit-consolidate), presplit-consolidate, "
                        "DETECTOR-SELECTOR[:PARAM] (e.g. lr-mmt:1.2) or a plugin whose class says engine = 'cloudsim'")


def choices_text() -> str:
    """Every valid policy name, for help texts and errors."""
    installed = sorted(entry_points())
    plugins = f"an installed plugin ({', '.join(installed)}), " if installed else ""
    return (f"presplit, evacuate (domain scenarios), presplit-consolidate (CloudSim scenarios; presplit there), "
            f"npa, dvfs, DETECTOR-SELECTOR[:PARAM] with detector in "
            f"{', '.join(DETECTORS)} and selector in {', '.join(SELECTORS)} (e.g. lr-mmt:1.2), {plugins}"
            f"{PLUGIN_TEXT}")


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
            f"engine, whose policies are: {', '.join(DOMAIN_POLICIES)} or a plugin whose class says "
            f"engine = 'domains'; run {name!r} with a CloudSim scenario (--scenario {where})")


def policy_names() -> list[str]:
    """The CloudSim engine's built-in names, each DETECTOR-SELECTOR form with its default parameter."""
    return [*CLOUDSIM_POLICIES, *CLOUDSIM_ALIASES] + [f"{d}-{s}:{p}" for d, (_, p) in DETECTORS.items()
                                                      for s in SELECTORS]


def make_policy(name: str, *, seed: int = 0, engine: str = "cloudsim"):
    """Build a fresh policy object from its command-line name, for the given engine.

    ``engine`` picks between the two objects of a name that runs on both (``presplit``: the domain
    engine's, or on the CloudSim engine ``presplit-consolidate``); a name on one engine gives its
    object whatever ``engine`` says (callers check :func:`engines`).
    """
    key = name.strip().lower()
    if engine not in ("cloudsim", "domains"):
        raise PolicyError(f"unknown engine {engine!r}: expected 'cloudsim' or 'domains'")
    on_cloudsim = CLOUDSIM_ALIASES.get(key, key)
    if key in DOMAIN_POLICIES and (engine == "domains" or on_cloudsim not in CLOUDSIM_POLICIES):
        return DOMAIN_POLICIES.create(key)
    if on_cloudsim in CLOUDSIM_POLICIES:
        return CLOUDSIM_POLICIES.create(on_cloudsim)
    plugin = find_plugin(name)
    if plugin is not None:
        return plugin.build(seed)
    spec, _, param = key.partition(":")
    det_name, _, sel_name = spec.partition("-")
    if det_name not in DETECTORS or sel_name not in SELECTORS:
        raise PolicyError(f"unknown policy {name!r}: expected {choices_text()}")
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
