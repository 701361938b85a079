"""``presplit policies``: every policy name, the engine(s) it runs on and its parameters.

:data:`POLICY_HELP` is the one text of ``--policy``'s help in every command; this module imports
nothing heavy at import time, so commands can use it in their option declarations.
"""

from __future__ import annotations

import click

POLICY_HELP = ("presplit (the default), evacuate (domain scenarios), presplit-consolidate (CloudSim scenarios, "
               "where presplit stands for it), npa, dvfs, DETECTOR-SELECTOR[:PARAM] with "
               "detector thr/iqr/mad/lr/lrr and selector mmt/mu/mc/rs (e.g. lr-mmt:1.2), an installed plugin's "
               "name, FILE.py:Class or module:Class (a plugin class; `presplit policies` lists them all)")

_DETECTOR_DOCS = {
    "thr": ("threshold", "static CPU threshold", {"gt": 0, "le": 1},
            "a host is overloaded above this share of its CPU"),
    "iqr": ("safety", "adaptive threshold from the interquartile range of the host's CPU history", {"ge": 0},
            "threshold = 1 - safety x IQR"),
    "mad": ("safety", "adaptive threshold from the median absolute deviation of the host's CPU history", {"ge": 0},
            "threshold = 1 - safety x MAD"),
    "lr": ("safety", "local regression forecast of the host's CPU", {"ge": 0},
           "overloaded when safety x the forecast reaches 1"),
    "lrr": ("safety", "robust local regression (as CloudSim 3.0.3 runs it: the same as lr)", {"ge": 0},
            "overloaded when safety x the forecast reaches 1"),
}
_SELECTOR_DOCS = {"mmt": "minimum migration time", "mu": "minimum utilisation", "mc": "maximum correlation",
                  "rs": "random selection (takes --seed)"}
_WORDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def range_text(bounds: dict) -> str:
    """``{"gt": 0, "le": 1}`` -> ``"> 0 and <= 1"``."""
    return " and ".join(f"{_WORDS[k]} {v:g}" for k, v in bounds.items())


def _param(name, kind, default, bounds, doc) -> dict:
    return {"name": name, "type": kind, "default": default, "bounds": dict(bounds), "range": range_text(bounds),
            "doc": doc}


def _dataclass_params(cls) -> list[dict]:
    from presplit.policies.params import describe

    return [_param(*row) for row in describe(cls)]


def _presplit_cloudsim_params() -> list[dict]:
    from presplit.scale.sweep import accepted_params

    return [_param(name, type(default).__name__, default, {}, "set with presplit sweep --param")
            for name, default in accepted_params("presplit").items()]


def _entry(name, engine, source, summary, parameters, **extra) -> dict:
    return {"name": name, "engine": engine, "source": source, "summary": summary, "parameters": parameters,
            **extra}


def builtin_entries() -> list[dict]:
    from presplit.policies.evacuate import EvacuatePolicy
    from presplit.policies.presplit.domains import DomainPresplit
    from presplit.policies.registry import CLOUDSIM_ALIASES, CLOUDSIM_POLICIES, DETECTORS, DOMAIN_POLICIES, SELECTORS

    params = {"presplit": lambda: _dataclass_params(DomainPresplit), "presplit-consolidate": _presplit_cloudsim_params,
              "evacuate": lambda: _dataclass_params(EvacuatePolicy)}
    also = {target: name for name, target in CLOUDSIM_ALIASES.items()}
    out = []
    # presplit's two policies first, then the baselines; the summaries are the registries'.
    for name, engine, registry in (("presplit", "domains", DOMAIN_POLICIES),
                                   ("presplit-consolidate", "cloudsim", CLOUDSIM_POLICIES),
                                   ("evacuate", "domains", DOMAIN_POLICIES),
                                   ("npa", "cloudsim", CLOUDSIM_POLICIES), ("dvfs", "cloudsim", CLOUDSIM_POLICIES)):
        where = "the split-domain engine (domain scenarios)" if engine == "domains" else "the CloudSim engine"
        summary = f"{registry.entry(name).summary}; runs on {where}"
        if name in also:
            summary += f", where --policy {also[name]} runs it too"
        out.append(_entry(name, engine, "built-in", summary, params[name]() if name in params else []))
    for det, (_, default) in DETECTORS.items():
        pname, what, bounds, doc = _DETECTOR_DOCS[det]
        forms = [f"{det}-{sel}" for sel in SELECTORS]
        summary = (f"CloudSim: {what}; guests leave by the selector ("
                   + ", ".join(f"{s} = {_SELECTOR_DOCS[s]}" for s in SELECTORS) + "); PABFD placement")
        out.append(_entry(f"{det}-SELECTOR[:{pname.upper()}]", "cloudsim", "built-in", summary,
                          [_param(pname, "float", default, bounds, doc + f" (set as {det}-SELECTOR:VALUE)")],
                          forms=forms))
    return out


def plugin_entries(plugin) -> list[dict]:
    import sys

    doc = (plugin.cls.__doc__ or "").strip().splitlines()
    if not doc or doc[0].startswith(plugin.cls.__name__ + "("):  # a dataclass's generated docstring
        doc = (getattr(sys.modules.get(plugin.cls.__module__), "__doc__", None) or "").strip().splitlines()
    summary = doc[0] if doc else ""
    return [_entry(plugin.name, engine, plugin.origin, summary, _dataclass_params(plugin.cls))
            for engine in plugin.engines]


def catalogue(specs: tuple[str, ...] = ()) -> list[dict]:
    """Every built-in policy, every installed plugin (entry point) and the plugins ``specs`` name.

    A plugin that cannot be loaded is listed with its ``error`` rather than failing the listing;
    a spec given on the command line that cannot be loaded is an error (PolicyError).
    """
    from presplit.policies.registry import PolicyError, entry_points, find_plugin, is_builtin

    out = builtin_entries()
    for name, ep in sorted(entry_points().items()):
        if is_builtin(name):
            out.append(_entry(name, "", f"entry point {name} = {ep.value}", "", [],
                              error=f"shadowed by the built-in policy {name!r}"))
            continue
        try:
            out += plugin_entries(find_plugin(name))
        except PolicyError as exc:
            out.append(_entry(name, "", f"entry point {name} = {ep.value}", "", [], error=str(exc)))
    for spec in specs:
        plugin = find_plugin(spec)
        if plugin is None:
            if not is_builtin(spec):
                from presplit.policies.registry import choices_text

                raise PolicyError(f"unknown policy {spec!r}: expected {choices_text()}")
            continue  # built-ins are listed already
        out += plugin_entries(plugin)
    return out


def render(entries: list[dict]):
    from rich.table import Table

    table = Table(caption="Parameters: name = default (range): what it does. Set them in a profile's args "
                          "(presplit run/serve --profile) or sweep them (presplit sweep --param NAME=V1,V2).",
                  caption_justify="left", show_lines=True)
    for col in ("policy", "engine", "source", "what it does", "parameters (default, range)"):
        table.add_column(col, overflow="fold")
    for e in entries:
        params = "\n".join(f"{p['name']} = {p['default']!r}" + (f" ({p['range']})" if p["range"] else "")
                           + (f": {p['doc']}" if p["doc"] else "") for p in e["parameters"])
        summary = e["summary"] if "error" not in e else f"error: {e['error']}"
        if e.get("forms"):
            summary = f"{', '.join(e['forms'])}: {summary}"
        table.add_row(e["name"], e["engine"] or "-", e["source"], summary, params or "-")
    return table


@click.command("policies", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("specs", nargs=-1, metavar="[FILE.py:Class | module:Class ...]")
@click.option("--json", "json_path", type=click.Path(allow_dash=True),
              metavar="FILE|-", default=None,
              help="Write the list as JSON (one object per policy and engine: name, engine, source, summary, "
                   "parameters with name, type, default, bounds, range, doc); '-' is stdout. Example: --json -")
def policies(specs: tuple[str, ...], json_path: str | None) -> None:
    """List every policy: built-ins, DETECTOR-SELECTOR forms and installed plugins, with engines and parameters.

    A policy runs on the CloudSim engine (scenario cloudsim, sweeps), on the domain engine (domain
    scenarios, presplit run/serve on a domain world, explain) or on both. Plugins are named
    FILE.py:Class, module:Class, or by an entry point of the presplit.policies group; name plugin
    classes as arguments to describe them too (see docs/writing-a-policy.md).

    \b
    Examples:
      presplit policies
      presplit policies examples/threshold_policy.py:Threshold
      presplit policies --json - | jq '.[].name'
    """
    from presplit.cli.simulate_cmd import check_json_file, print_table, write_json

    check_json_file(json_path)
    entries = catalogue(specs)
    print_table(render(entries), json_path, width=200)
    if json_path is not None:
        write_json(json_path, entries, what=f"{len(entries)} policies")
