"""Profiles: which policies the controller runs, with which arguments, under which global caps.

As the descheduler keeps its safety caps in the profile rather than in each
plugin, a profile is one YAML file::

    policies:
      - name: evacuate
        args: {high: 0.85, spare_hosts: 1}
    caps:
      per_host: 2      # actions running on one host (source or destination)
      per_link: 4      # migrations crossing one fabric link
      total: 8         # actions running at once
    interval: 5m       # optional: the control tick

Every mistake is a :class:`ProfileError` naming the file, the key and what
was expected -- unknown policy, unknown argument, negative or zero cap --
raised before anything is applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from presplit.durations import DurationError, parse_duration
from presplit.errors import InputError
from presplit.plan.ordering import Limits, PlanError

CAP_KEYS = ("per_host", "per_link", "total")


class ProfileError(InputError):
    def __init__(self, where: str, key: str, message: str, expected: str = "") -> None:
        self.where, self.key = where, key
        super().__init__(f"{where}: {key or '(top level)'}: {message}" + (f" (expected {expected})" if expected else ""))


@dataclass(frozen=True)
class PolicySpec:
    name: str
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    policies: tuple[PolicySpec, ...]
    limits: Limits = field(default_factory=Limits)
    interval_s: float | None = None
    source: str = "(default)"
    forecaster: str | None = None  # the decision forecaster (presplit.forecast.decision); None: outlook

    @property
    def label(self) -> str:
        return "+".join(p.name for p in self.policies)


def default_profile(kind: str) -> Profile:
    """``presplit`` on either world; no caps on the CloudSim world (CloudSim has none)."""
    if kind == "cloudsim":
        return Profile((PolicySpec("presplit"),), Limits(None, None, None))
    return Profile((PolicySpec("presplit"),))


def load_profile(path: str | Path) -> Profile:
    import yaml

    where = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(where, "", f"cannot read: {exc.strerror}", "a readable YAML file") from None
    except UnicodeDecodeError as exc:
        raise ProfileError(where, "", f"not UTF-8 text (byte {exc.start})", "a YAML file") from None
    except yaml.YAMLError as exc:
        raise ProfileError(where, "", f"not valid YAML: {exc}") from None
    return parse_profile(data, where)


def parse_profile(data, where: str = "(profile)") -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(where, "", f"{type(data).__name__} at top level", "a mapping with policies and caps")
    unknown = sorted(set(data) - {"policies", "caps", "interval", "forecaster"})
    if unknown:
        raise ProfileError(where, unknown[0], "unknown key", "policies, caps, interval or forecaster")
    forecaster = data.get("forecaster")
    if forecaster is not None:
        from presplit.forecast.decision import forecaster_names

        if not isinstance(forecaster, str) or forecaster not in forecaster_names():
            raise ProfileError(where, "forecaster", f"{forecaster!r}", "one of " + ", ".join(forecaster_names()))
    raw = data.get("policies")
    if not isinstance(raw, list) or not raw:
        raise ProfileError(where, "policies", f"{raw!r}", "a non-empty list of {name, args}")
    specs = []
    for i, item in enumerate(raw):
        key = f"policies[{i}]"
        item = {"name": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ProfileError(where, key, f"{item!r}", "a mapping with a policy name")
        extra = sorted(set(item) - {"name", "args"})
        if extra:
            raise ProfileError(where, f"{key}.{extra[0]}", "unknown key", "name or args")
        args = item.get("args") or {}
        if not isinstance(args, dict):
            raise ProfileError(where, f"{key}.args", f"{args!r}", "a mapping of argument names to values")
        specs.append(PolicySpec(item["name"], dict(args)))
    caps = data.get("caps") or {}
    if not isinstance(caps, dict):
        raise ProfileError(where, "caps", f"{caps!r}", "a mapping of per_host, per_link, total")
    bad = sorted(set(caps) - set(CAP_KEYS))
    if bad:
        raise ProfileError(where, f"caps.{bad[0]}", "unknown cap", ", ".join(CAP_KEYS))
    for k, v in caps.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ProfileError(where, f"caps.{k}", f"{v!r} is not a positive whole number", "an integer >= 1 or null")
    try:
        limits = Limits(**{k: caps.get(k, getattr(Limits(), k)) for k in CAP_KEYS})
    except PlanError as exc:
        raise ProfileError(where, "caps", str(exc)) from None
    interval = None
    if data.get("interval") is not None:
        try:
            interval = parse_duration(data["interval"], positive=True)
        except DurationError as exc:
            raise ProfileError(where, "interval", exc.problem,
                               "a positive duration such as 5m, 1h30m or PT5M") from None
    profile = Profile(tuple(specs), limits, interval, where, forecaster)
    # Unknown policies and arguments are errors now, not at the first tick. The world is
    # not known yet: a profile is good when some world takes every policy with its arguments.
    from presplit.policies.registry import engines

    def runs_there(kind: str) -> bool:
        try:
            return all(kind in engines(spec.name) for spec in profile.policies)
        except Exception:  # noqa: BLE001 - an unknown name: build_policies says so, naming the key
            return True

    # Report the problem of a world that runs every named policy (a bad argument there), not the other
    # world's "runs on the cloudsim world" when the names already say which world it is.
    kinds = [k for k in ("domains", "cloudsim") if runs_there(k)] or ["domains", "cloudsim"]
    errors = []
    for kind in kinds:
        try:
            build_policies(profile, kind)
            break
        except ProfileError as exc:
            errors.append(exc)
    else:
        raise errors[0]
    return profile


def build_policies(profile: Profile, kind: str | None = None) -> list:
    """Policy objects for the profile; ``kind`` ('domains' or 'cloudsim') must match the world's."""
    from presplit.policies import PolicyError, make_policy
    from presplit.policies.params import ArgumentError, parameters, validate_args
    from presplit.policies.registry import engines

    out = []
    for i, spec in enumerate(profile.policies):
        key = f"policies[{i}]"
        try:
            obj = make_policy(spec.name, engine=kind or engines(spec.name)[0])
        except PolicyError as exc:
            raise ProfileError(profile.source, f"{key}.name", f"unknown policy: {exc}") from None
        if kind is not None and kind not in engines(spec.name):
            raise ProfileError(profile.source, f"{key}.name",
                               f"policy {spec.name!r} runs on the {engines(spec.name)[0]} world, this backend is {kind}",
                               f"a {kind} policy")
        if kind == "cloudsim" and spec.args and not parameters(type(obj)):
            raise ProfileError(profile.source, f"{key}.args.{next(iter(spec.args))}",
                               f"policy {spec.name!r} takes no arguments on the CloudSim engine",
                               "no args: a CloudSim-engine policy takes its parameter in its name (e.g. lr-mmt:1.3); "
                               "presplit's are swept with presplit sweep --param")
        try:
            obj = validate_args(obj, spec.args)
        except ArgumentError as exc:
            raise ProfileError(profile.source, f"{key}.args" + (f".{exc.key}" if exc.key else ""), exc.message,
                               exc.expected) from None
        out.append(obj)
    return out
