"""The failure model of the simulated domain world: what fails, when (seeded), and what it cost.

Four kinds of failure (their effect on the state is :mod:`presplit.plan.failures`):

- ``host``: a host crashes; every guest on it stops; it is back after
  ``host_repair`` plus its boot delay.
- ``domain``: one domain's services crash; only its guests stop; its services
  are back after ``domain_restart``.
- ``link``: a host's NIC (its link to its top-of-rack switch) or a rack's
  uplink to the spine fails for ``link_repair``; migrations whose route it
  carried fail (the guest stays at its source), the fabric routes around it
  where it can (a mesh rack through a neighbour; a lone uplink: no way).
- ``migration``: each live migration fails with this probability, at a
  uniform point of its pre-copy (the guest stays at its source).

Rates are per day for the whole fleet (``host=2/day``: two host crashes a day
on average, a Poisson process): every policy sees the same failures at the
same times. Which host or domain a failure hits is drawn at that moment among
those up (hosts booted; domains whose services run, in proportion to their
memory allotment), so a policy that spreads its guests over more hosts loses
fewer guests per crash, and pays for the hosts in energy. A link failure hits
each NIC and uplink with the same chance. Timed events (``events:``) name
their target. Everything is drawn from ``seed``: one random stream per kind, so
adding link failures does not move the host crashes.

:class:`FailureRun` applies them in :func:`presplit.sim.domain_engine.run_domains`
at their own times between two ticks (after the tick's actions), calls the
policy's ``recover(state, forecasts, now)`` once a failure is ``detection_s``
old (the policy's own detection timeout) and again whenever capacity comes
back while guests are still stopped, and computes the failure metrics of a
run: ``guests_lost``, ``failover_restarts``, ``failover_max_s``,
``failover_p95_s``, ``failure_downtime_s``, ``failover_capacity_short``,
``failures_injected`` and ``migrations_failed``.

Specs: :func:`parse_failures` reads ``presplit simulate --failures`` (a
RATE-SPEC such as ``host=2/day,domain=5/day,link=1/day,migration=0.01,seed=3``
or a YAML file), :func:`spec_from_mapping` a scenario's ``failures:`` section.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from presplit.durations import DurationError, parse_duration
from presplit.errors import InputError
from presplit.model.cluster import ClusterState
from presplit.model.domains import ABSENT, DOWN, MIGRATING, PENDING, RUNNING
from presplit.plan import advance
from presplit.plan.failures import (
    DetectFailure, DomainCrash, HostCrash, LinkFailure, LinkRepair, MigrationFailure, choose, host_targets,
    link_targets, pick_domain,
)
from presplit.yamlfile import FileFormatError, yaml_mapping

KINDS = ("host", "domain", "link")  # rate kinds, in the order their random streams are numbered
RATE_KEYS = (*KINDS, "migration", "seed", "host_repair", "domain_restart", "link_repair", "guest_boot")
FILE_KEYS = (*RATE_KEYS, "events", "priorities")
EVENT_KEYS = ("at", "kind", "host", "domain", "link", "for")
DAY = 86400.0
MAX_RATE_PER_DAY = 100_000.0  # far above any real fleet; catches unit slips (per second taken as per day)
EXPECTED_RATE = "a rate such as 2/day, 0.5/h or 3 (per day), >= 0"
EXPECTED_DURATION = "a duration such as 90s, 30min, 4h, 1d, PT1H or a number of seconds, >= 0"


class FailureSpecError(InputError):
    """A bad failure spec; ``key`` is the key path, ``message`` and ``expected`` what is wrong and what would do."""

    def __init__(self, key: str, message: str, expected: str = "") -> None:
        self.key, self.message, self.expected = key, message, expected
        super().__init__(f"{key}: {message}" + (f" (expected {expected})" if expected else ""))


@dataclass(frozen=True)
class TimedFailure:
    """A failure at a given time: ``kind`` host, domain or link; the target by name (a host, a domain id,
    a link such as ``nic:big-03`` or ``uplink:r0``); ``duration_s`` overrides the spec's repair time."""

    at: float
    kind: str
    host: str | None = None
    domain: int | None = None
    link: str | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class FailureSpec:
    host_per_day: float = 0.0
    domain_per_day: float = 0.0
    link_per_day: float = 0.0
    migration_p: float = 0.0
    seed: int = 0
    host_repair_s: float = 4 * 3600.0  # diagnose, fix or replace a part, power on again
    domain_restart_s: float = 60.0  # the domain's services (VMM, monitor) start again
    link_repair_s: float = 3600.0
    guest_boot_s: float | None = None  # None: the scenario model's (60 s by default)
    events: tuple[TimedFailure, ...] = ()
    priorities: tuple[tuple[str, int], ...] = ()  # restart priority per guest-id glob (higher first)
    text: str = field(default="", compare=False)  # as given, for labels

    @property
    def active(self) -> bool:
        return bool(self.host_per_day or self.domain_per_day or self.link_per_day or self.migration_p
                    or self.events)


# ----------------------------------------------------------------- parsing
def _rate(key: str, value) -> float:
    if isinstance(value, bool):
        raise FailureSpecError(key, f"{value!r} is not a rate", EXPECTED_RATE)
    if isinstance(value, (int, float)):
        per_day = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(?:/\s*([a-zA-Z]+))?\s*", value)
        if not m:
            raise FailureSpecError(key, f"cannot read {value!r} as a rate", EXPECTED_RATE)
        unit = (m.group(2) or "day").lower()
        per = {"day": 1.0, "d": 1.0, "h": 24.0, "hour": 24.0, "week": 1 / 7.0, "w": 1 / 7.0}.get(unit)
        if per is None:
            raise FailureSpecError(key, f"unknown unit {m.group(2)!r} in {value!r}", EXPECTED_RATE)
        per_day = float(m.group(1)) * per
    else:
        raise FailureSpecError(key, f"{value!r} is not a rate", EXPECTED_RATE)
    if not math.isfinite(per_day) or per_day < 0:
        raise FailureSpecError(key, f"{value!r} is not a finite rate >= 0", EXPECTED_RATE)
    if per_day > MAX_RATE_PER_DAY:
        raise FailureSpecError(key, f"{value!r} is {per_day:,.0f} a day, more than {MAX_RATE_PER_DAY:,.0f}",
                               EXPECTED_RATE)
    return per_day


def _probability(key: str, value) -> float:
    expected = "a probability per migration in 0..1, such as 0.01 or 1%"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            p = float(value.strip()[:-1]) / 100.0
        except ValueError:
            raise FailureSpecError(key, f"cannot read {value!r} as a probability", expected) from None
    elif isinstance(value, str):
        try:
            p = float(value)
        except ValueError:
            raise FailureSpecError(key, f"cannot read {value!r} as a probability", expected) from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        p = float(value)
    else:
        raise FailureSpecError(key, f"{value!r} is not a probability", expected)
    if not (0.0 <= p <= 1.0):
        raise FailureSpecError(key, f"{value!r} is outside 0..1", expected)
    return p


def _duration(key: str, value) -> float:
    try:
        return parse_duration(value, what=key)
    except DurationError as exc:
        raise FailureSpecError(key, exc.problem, EXPECTED_DURATION) from None


def _seed(key: str, value) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value >= 2**63:
        raise FailureSpecError(key, f"{value!r} is not a seed", "a whole number >= 0")
    return value


def _apply(spec: dict, key: str, value, where: str) -> None:
    k = f"{where}{key}"
    if key in KINDS:
        spec[f"{key}_per_day"] = _rate(k, value)
    elif key == "migration":
        spec["migration_p"] = _probability(k, value)
    elif key == "seed":
        spec["seed"] = _seed(k, value)
    elif key in ("host_repair", "domain_restart", "link_repair", "guest_boot"):
        spec[f"{key}_s"] = _duration(k, value)
    else:
        raise FailureSpecError(k, "unknown key", "one of " + ", ".join(FILE_KEYS if where else RATE_KEYS))


def parse_rate_spec(text: str) -> FailureSpec:
    """``host=2/day,domain=5/day,link=1/day,migration=0.01,seed=3`` (any subset; durations too:
    ``host_repair=4h,domain_restart=60s,link_repair=1h,guest_boot=60s``)."""
    values: dict = {}
    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise FailureSpecError("failures", "empty", "key=value pairs such as host=2/day,domain=5/day,seed=3")
    seen = set()
    for part in parts:
        if not part:
            continue
        if "=" not in part:
            raise FailureSpecError(part, "not key=value", "key=value pairs such as host=2/day,domain=5/day,seed=3")
        key, value = (x.strip() for x in part.split("=", 1))
        if key in seen:
            raise FailureSpecError(key, "given twice", "each key once")
        seen.add(key)
        _apply(values, key, value, "")
    return FailureSpec(**values, text=text)


def spec_from_mapping(data, where: str = "failures") -> FailureSpec:
    """A ``failures:`` mapping (a scenario section or a --failures YAML file); errors name the key path."""
    if not isinstance(data, dict):
        raise FailureSpecError(where, f"{data!r} is not a mapping", "keys " + ", ".join(FILE_KEYS))
    values: dict = {}
    for key, value in data.items():
        if str(key).startswith("_"):
            continue
        if key == "events":
            values["events"] = _events(value, f"{where}.events")
        elif key == "priorities":
            values["priorities"] = _priorities(value, f"{where}.priorities")
        else:
            _apply(values, str(key), value, f"{where}.")
    return FailureSpec(**values)


def _events(raw, where: str) -> tuple[TimedFailure, ...]:
    if not isinstance(raw, list):
        raise FailureSpecError(where, f"{raw!r} is not a list", "a list of {at, kind, host|domain|link}")
    out = []
    for i, item in enumerate(raw):
        w = f"{where}[{i}]"
        if not isinstance(item, dict):
            raise FailureSpecError(w, f"{item!r} is not a mapping", "keys " + ", ".join(EVENT_KEYS))
        unknown = sorted(str(k) for k in item if k not in EVENT_KEYS)
        if unknown:
            raise FailureSpecError(f"{w}.{unknown[0]}", "unknown key", "one of " + ", ".join(EVENT_KEYS))
        kind = item.get("kind")
        if kind not in KINDS:
            raise FailureSpecError(f"{w}.kind", f"{kind!r}", " or ".join(KINDS))
        if "at" not in item:
            raise FailureSpecError(f"{w}.at", "missing", EXPECTED_DURATION + " since the start")
        target = {"host": "host", "domain": ("host", "domain"), "link": "link"}[kind]
        if not any(k in item for k in (target if isinstance(target, tuple) else (target,))):
            names = " or ".join(target) if isinstance(target, tuple) else target
            raise FailureSpecError(w, f"a {kind} failure without its target", f"{names}: what fails")
        domain = item.get("domain")
        if domain is not None and (isinstance(domain, bool) or not isinstance(domain, int) or domain < 0):
            raise FailureSpecError(f"{w}.domain", f"{domain!r}", "a domain id (a whole number >= 0)")
        for k in ("host", "link"):
            if k in item and not isinstance(item[k], str):
                raise FailureSpecError(f"{w}.{k}", f"{item[k]!r} is not a name", "a host name" if k == "host"
                                       else "a link name such as nic:HOST or uplink:RACK")
        out.append(TimedFailure(_duration(f"{w}.at", item["at"]), kind, item.get("host"), domain, item.get("link"),
                                _duration(f"{w}.for", item["for"]) if "for" in item else None))
    return tuple(sorted(out, key=lambda e: e.at))


def _priorities(raw, where: str) -> tuple[tuple[str, int], ...]:
    expected = "a list of {guests: GLOB, priority: N} (or a mapping GLOB: N); higher restarts first"
    items = list(raw.items()) if isinstance(raw, dict) else None
    if items is None:
        if not isinstance(raw, list):
            raise FailureSpecError(where, f"{raw!r}", expected)
        items = []
        for i, item in enumerate(raw):
            if not isinstance(item, dict) or set(item) != {"guests", "priority"}:
                raise FailureSpecError(f"{where}[{i}]", f"{item!r}", expected)
            items.append((item["guests"], item["priority"]))
    out = []
    for i, (pattern, level) in enumerate(items):
        if not isinstance(pattern, str) or isinstance(level, bool) or not isinstance(level, int):
            raise FailureSpecError(f"{where}[{i}]", f"{pattern!r}: {level!r}", expected)
        out.append((pattern, int(level)))
    return tuple(out)


def parse_failures(text: str, option: str = "--failures") -> FailureSpec:
    """``--failures FILE|RATE-SPEC``: a YAML file (its top level, or its ``failures:`` section, is the mapping)
    or a RATE-SPEC. Any problem is one InputError line naming the option and the key."""
    raw = text.strip()
    path = Path(raw)
    looks_like_file = path.suffix.lower() in (".yaml", ".yml", ".json") or "=" not in raw
    try:
        if path.is_file():
            try:
                data = yaml_mapping(path, what="failures", keys="failure keys (host, domain, link, seed, events, ...)")
            except FileFormatError as exc:
                raise InputError(f"{option} {raw}: {exc.message}"
                                 + (f" (expected {exc.expected})" if exc.expected else "")) from None
            section = data.get("failures", data) if set(data) <= {"failures"} else data
            return replace(spec_from_mapping(section, "failures"), text=raw)
        if looks_like_file:
            if path.exists():
                raise InputError(f"{option} {raw}: a folder, not a failures file")
            if "=" not in raw:
                raise InputError(f"{option} {raw!r}: no such file, and not a RATE-SPEC (expected a YAML file or "
                                 "key=value pairs such as host=2/day,domain=5/day,seed=3)")
        return parse_rate_spec(raw)
    except FailureSpecError as exc:
        raise InputError(f"{option} {raw!r}: {exc}") from None


# ----------------------------------------------------------------- generation
@dataclass(frozen=True)
class Draw:
    """One failure to inject: its time, kind, the uniform draw that picks its target (or a named target)."""

    at: float
    kind: str
    pick: float = 0.0
    duration_s: float | None = None
    host: str | None = None
    domain: int | None = None
    link: str | None = None


def generate(spec: FailureSpec, horizon_s: float) -> list[Draw]:
    """Every failure of ``spec`` in [0, horizon_s), in time order: Poisson arrivals per kind (one seeded
    stream each) plus the timed events. The same spec and horizon give the same list."""
    out: list[Draw] = []
    for i, kind in enumerate(KINDS):
        rate = getattr(spec, f"{kind}_per_day")
        if rate <= 0:
            continue
        rng = np.random.default_rng([spec.seed, i])
        t = 0.0
        while True:
            t += float(rng.exponential(DAY / rate))
            if t >= horizon_s:
                break
            out.append(Draw(t, kind, float(rng.random())))
    for e in spec.events:
        if e.at < horizon_s:
            out.append(Draw(e.at, e.kind, 0.0, e.duration_s, e.host, e.domain, e.link))
    return sorted(out, key=lambda d: (d.at, KINDS.index(d.kind)))


# ----------------------------------------------------------------- the run
@dataclass
class _Record:
    guest: int
    failed_at: float
    up_at: float | None = None


class FailureRun:
    """Failures and recovery over one run of the domain engine (see the module docstring).

    ``during(proposed, get_state, forecasts, t0, t1)`` wraps a tick's proposal: it yields the proposed
    actions, then the failures (and the policy's recovery actions) due in [t0, t1), in time order, each
    to be applied by the engine like any action. ``finish(state)`` returns the metrics.
    """

    def __init__(self, spec: FailureSpec | None, state: ClusterState, policy, horizon_s: float,
                 interval_s: float) -> None:
        self.spec = spec or FailureSpec()
        self.horizon_s, self.interval_s = float(horizon_s), float(interval_s)
        self.recover: Callable | None = getattr(policy, "recover", None)
        self.detection_s = float(getattr(policy, "detection_s", 30.0))
        self.base = state.fabric
        links = self.spec.link_per_day > 0 or any(e.kind == "link" for e in self.spec.events)
        self.links = dict(link_targets(state, self.base)) if links else {}  # only when links can fail
        self.link_names = sorted(self.links)
        self.hosts = {h.name: i for i, h in enumerate(state.hosts)}
        self.heap: list = []
        self.seq = 0
        for d in generate(self.spec, self.horizon_s):
            self._check_target(d, state)
            self._push(d.at, d.kind, d)
        self.rng_mig = np.random.default_rng([self.spec.seed, len(KINDS)])
        self.seen_mig: set[tuple[int, float]] = set()
        self.links_down: dict = {}
        self.retries: set[float] = set()
        self.open: dict[int, _Record] = {}
        self.closed: list[_Record] = []
        self.short_ticks = 0
        self.injected = 0
        self.migrations_failed = 0

    # ------------------------------------------------------------ setup
    def start(self, state: ClusterState) -> ClusterState:
        """The world as the spec wants it (a restarted guest's boot time)."""
        if self.spec.guest_boot_s is not None and self.spec.guest_boot_s != state.model.guest_boot_s:
            return state.evolve(model=replace(state.model, guest_boot_s=float(self.spec.guest_boot_s)))
        return state

    def _check_target(self, d: Draw, state: ClusterState) -> None:
        if d.host is not None and d.host not in self.hosts:
            raise InputError(f"failures: a {d.kind} failure at t={d.at:g} s names host {d.host!r}, which the "
                             f"fleet does not have (hosts {state.hosts[0].name} .. {state.hosts[-1].name})")
        if d.domain is not None and d.domain >= len(state.domains):
            raise InputError(f"failures: a domain failure at t={d.at:g} s names domain {d.domain}; the fleet "
                             f"starts with domains 0 .. {len(state.domains) - 1}")
        if d.link is not None and d.link not in self.links:
            raise InputError(f"failures: a link failure at t={d.at:g} s names link {d.link!r} (expected one of "
                             f"{', '.join(self.link_names[:3])}, ..., {self.link_names[-1]})")

    def _push(self, t: float, kind: str, payload) -> None:
        heapq.heappush(self.heap, (float(t), self.seq, kind, payload))
        self.seq += 1

    # ------------------------------------------------------------ the tick
    def during(self, proposed: Iterable, get_state: Callable[[], ClusterState], forecasts, t0: float,
               t1: float) -> Iterator:
        yield from proposed
        state = get_state()
        self._track(state)
        self._draw_migrations(state, t0)
        from presplit.policies.recovery import reserve_short

        if reserve_short(state):
            self.short_ticks += 1
        while self.heap and self.heap[0][0] < t1:
            at, _, kind, payload = heapq.heappop(self.heap)
            at = max(at, get_state().now)
            if kind == "detect":
                self.retries.discard(at)
                yield from self._recover(get_state, forecasts, at)
            elif kind in ("host", "domain", "link"):
                flying = self._after(get_state(), at).guest_status == MIGRATING
                step = {"host": self._crash_host, "domain": self._crash_domain, "link": self._link}[kind]
                yield from step(get_state(), payload, at)
                self.migrations_failed += int((flying & (get_state().guest_status != MIGRATING)).sum())
            elif kind == "repair":
                back = []
                for x in payload[1]:
                    self.links_down[x] -= 1
                    if self.links_down[x] == 0:
                        back.append(x)
                if back:
                    yield LinkRepair(at, links=tuple(back), name=payload[0],
                                     reason=f"link {payload[0]} repaired")
            elif kind == "migration":
                g, dest, started = payload
                state = get_state()
                if int(state.guest_status[g]) == MIGRATING and int(state.guest_dest[g]) == dest and \
                        float(state.guest_mig_start[g]) == started:
                    self.migrations_failed += 1
                    yield MigrationFailure(at, guest=g, to_domain=dest, started=started,
                                           reason=f"injected failure: the live migration of guest "
                                                  f"{state.guests[g].id} aborts; it stays at its source")
            self._track(get_state())

    def _after(self, state: ClusterState, at: float) -> ClusterState:
        return advance(state, at)[0] if at > state.now else state

    def _crash_host(self, state: ClusterState, d: Draw, at: float):
        state = self._after(state, at)
        up = host_targets(state)
        h = self.hosts[d.host] if d.host is not None else (up[choose(d.pick, len(up))[0]] if up else None)
        if h is None or h not in up:
            return
        self.injected += 1
        repair = self.spec.host_repair_s if d.duration_s is None else d.duration_s
        yield HostCrash(at, host=h, repair_s=repair, reason=f"injected failure: host {state.hosts[h].name} crashes "
                        f"(back after {repair:g} s of repair and its boot)")
        self._detect_later(at)

    def _crash_domain(self, state: ClusterState, d: Draw, at: float):
        state = self._after(state, at)
        if d.domain is not None:
            dom = d.domain
        elif d.host is not None:  # that host's domain holding the most guests
            doms = [x.id for x in state.domains_of(self.hosts[d.host])]
            dom = max(doms, key=lambda x: (int((state.guest_domain == x).sum()), -x)) if doms else None
        else:
            dom = pick_domain(state, d.pick)
        if dom is None or not state.domains[dom].live or state.domains[dom].state not in ("active", "draining") \
                or not state.host_ready(state.domains[dom].host):
            return
        self.injected += 1
        restart = self.spec.domain_restart_s if d.duration_s is None else d.duration_s
        host = state.hosts[state.domains[dom].host].name
        yield DomainCrash(at, domain=dom, restart_s=restart, reason=f"injected failure: the services of domain {dom} "
                          f"(host {host}) crash; they restart in {restart:g} s")
        self._detect_later(at)

    def _link(self, state: ClusterState, d: Draw, at: float):
        name = d.link if d.link is not None else self.link_names[choose(d.pick, len(self.link_names))[0]]
        links = self.links[name]
        self.injected += 1
        for x in links:
            self.links_down[x] = self.links_down.get(x, 0) + 1
        repair = self.spec.link_repair_s if d.duration_s is None else d.duration_s
        yield LinkFailure(at, links=tuple(x for x in links if self.links_down[x] == 1), name=name,
                          reason=f"injected failure: link {name} fails for {repair:g} s; migrations over it fail, "
                                 "the fabric routes around it where it can")
        self._push(at + repair, "repair", (name, links))

    def _detect_later(self, at: float) -> None:
        if self.recover is not None:
            self._push(at + self.detection_s, "detect", None)

    def _recover(self, get_state, forecasts, at: float):
        yield DetectFailure(at, stopped=0, reason="heartbeats missed: recovery runs")
        actions = self.recover(get_state(), forecasts, at) or ()
        yield from actions
        state = get_state()
        from presplit.policies.recovery import detected

        if len(detected(state, self.detection_s)):
            # Still stopped guests: try again as soon as capacity comes back (a host booted, a domain restarted).
            later = [float(x) for x, on in zip(state.host_ready_at, state.host_on) if on and x > state.now]
            later += [d.ready_at for d in state.domains if d.live and d.state == "provisioning" and
                      d.ready_at > state.now]
            if later:
                t = min(later)
                if t < self.horizon_s and t not in self.retries:
                    self.retries.add(t)
                    self._push(t, "detect", None)

    def _draw_migrations(self, state: ClusterState, t0: float) -> None:
        flying = np.flatnonzero((state.guest_status == MIGRATING) & (state.guest_mig_start >= t0 - 1e-9))
        fresh = [(int(g), float(state.guest_mig_start[g])) for g in flying
                 if (int(g), float(state.guest_mig_start[g])) not in self.seen_mig]
        self.seen_mig = {k for k in self.seen_mig if k[1] >= t0 - 1e-9} | set(fresh)
        p = self.spec.migration_p
        if p <= 0:
            return
        for g, start in fresh:
            if self.rng_mig.random() < p:
                end = float(state.guest_mig_end[g])
                self._push(start + float(self.rng_mig.random()) * (end - start), "migration",
                           (g, int(state.guest_dest[g]), start))

    # ------------------------------------------------------------ accounting
    def _track(self, state: ClusterState) -> None:
        """Open a record for each guest a failure stopped; close it once the guest was restarted."""
        stopped = (state.guest_status == DOWN) & np.isinf(state.guest_down_end)
        for g in np.flatnonzero(stopped):
            g = int(g)
            if g in self.open:
                continue
            t = float(state.guest_down_start[g])
            last = next((r for r in reversed(self.closed) if r.guest == g), None)
            if last is not None and last.up_at is not None and last.up_at > t:
                self.closed.remove(last)  # stopped again while it was booting: the same outage goes on
                last.up_at = None
                self.open[g] = last
            else:
                self.open[g] = _Record(g, t)
        for g in [g for g in self.open if not stopped[g]]:
            rec = self.open.pop(g)
            end = float(state.guest_down_end[g])
            rec.up_at = end if math.isfinite(end) else float(state.now)
            self.closed.append(rec)

    def finish(self, state: ClusterState) -> dict:
        """The failure metrics of the run, from ``state`` at the horizon."""
        self._track(state)
        h = self.horizon_s
        done = np.array([min(r.up_at, h) - r.failed_at for r in self.closed if r.failed_at < h])
        still = np.array([h - r.failed_at for r in self.open.values()])
        times = np.concatenate([np.array([r.up_at - r.failed_at for r in self.closed]), still])
        status = state.guest_status
        stopped = (status == DOWN) & np.isinf(state.guest_down_end)
        grace = self.detection_s + 2 * self.interval_s
        fine = ((status == RUNNING) | (status == MIGRATING) | (status == PENDING) | (status == ABSENT)
                | ((status == DOWN) & ~stopped) | (stopped & (state.now - state.guest_down_start <= grace)))
        return {
            "guests_lost": int((~fine).sum()),
            "failover_restarts": len(self.closed),
            "failover_max_s": float(times.max()) if len(times) else 0.0,
            "failover_p95_s": float(np.percentile(times, 95)) if len(times) else 0.0,
            "failure_downtime_s": float(np.clip(done, 0, None).sum() + still.sum()),
            "failover_capacity_short": self.short_ticks,
            "failures_injected": self.injected,
            "migrations_failed": self.migrations_failed,
        }


# ----------------------------------------------------------------- the CloudSim engine
CLOUDSIM_KINDS = ("host", "migration")


def check_cloudsim_spec(spec: FailureSpec, option: str = "--failures") -> None:
    """The kinds the CloudSim engine models: host crashes and failed live migrations. Anything else is one
    InputError line saying why (its model has no network fabric and one domain per host)."""
    what = f"{option}" + (f" {spec.text!r}" if spec.text else "")
    if spec.link_per_day > 0 or any(e.kind == "link" for e in spec.events):
        raise InputError(f"{what}: link failures need a network fabric, which the CloudSim engine's model does "
                         "not have (expected host=..., migration=...; link failures run on domain scenarios "
                         "such as bighost-patch)")
    if spec.domain_per_day > 0 or any(e.kind == "domain" for e in spec.events):
        raise InputError(f"{what}: the CloudSim engine's model has one domain per host, so a domain crash is a "
                         "host crash there (expected host=... instead of domain=...)")
    if spec.priorities:
        raise InputError(f"{what}: restart priorities match guest ids, which the CloudSim engine's guests do "
                         "not have (expected no `priorities` on the CloudSim engine)")


def first_fit_restart(engine, guest: int) -> int | None:
    """vSphere HA's default placement of a restarted guest: the first running host (in host order) with room for
    its current demand (CPU, and RAM where memory is enforced); else the first switched-off host that is up."""
    e = engine
    fail = e.fail
    up = fail.up_mask()
    need = float(e.requested[guest])
    ok = up & (e.h_pe >= e.g_mips[guest])
    if e.model.enforce_ram:
        ok &= e.ram_free >= e.g_ram[guest] - 1e-6
    room = e.h_total - e.h_util_mips - fail.booting_mips >= need
    running = np.flatnonzero(ok & room & (e.count > 0))
    if len(running):
        return int(running[0])
    off = np.flatnonzero(ok & (e.count == 0))
    return int(off[0]) if len(off) else None


def _host_number(name) -> int:
    """A CloudSim engine host by name (``host-3`` or ``3``) -> its number; -1 when the name holds none."""
    try:
        return int(str(name).removeprefix("host-"))
    except ValueError:
        return -1


class CloudSimFailures:
    """Failures and recovery over one run of the CloudSim engine (:class:`presplit.sim.engine.Engine`).

    Kinds: ``host`` crashes (drawn among the hosts that are on) and ``migration`` failures; see
    :func:`check_cloudsim_spec` for the rest. A crashed host loses every guest on it (those migrating out of it
    stop too; those migrating into it stay at their source); it draws nothing and takes no guest until
    ``host_repair_s`` later, then it is up again, empty and off. ``detection_s`` after the crash (the policy's
    ``detection_s``, 30 s by default) the stopped guests restart, largest RAM first, where the policy's
    ``restart_target(engine, guest)`` says (:func:`first_fit_restart` without one): a restart books the guest on
    its host (a switched-off host boots first) and the guest is still down for ``guest_boot_s`` (60 s) while it
    boots. Guests no host can take retry at every tick and at every repair. A failed migration leaves the
    guest at its source and frees the destination's RAM. The engine calls :meth:`next_at` and :meth:`fire`
    between its own updates; stopped and booting guests' demand is requested and not served.
    """

    def __init__(self, spec: FailureSpec, engine, policy) -> None:
        check_cloudsim_spec(spec)
        self.spec = spec
        self.e = engine
        m = engine.model
        self.horizon_s, self.interval_s = float(m.horizon_s), float(m.interval_s)
        self.detection_s = float(getattr(policy, "detection_s", 30.0))
        self.guest_boot_s = 60.0 if spec.guest_boot_s is None else float(spec.guest_boot_s)
        self.target: Callable | None = getattr(policy, "restart_target", None)
        n_h, n_g = engine.n_hosts, engine.n_guests
        self.down_until = np.full(n_h, -np.inf)
        self.stopped = np.zeros(n_g, dtype=bool)  # down: crashed and not yet booted again (booting included)
        self.down_start = np.full(n_g, np.nan)
        self.boot_host = np.full(n_g, -1, dtype=np.int64)  # where a restarted guest boots
        self.boot_token = np.zeros(n_g, dtype=np.int64)
        self.booting_mips = np.zeros(n_h)  # demand of the guests booting on each host (booked for restarts)
        self.boot_mips = np.zeros(n_g)  # what each booting guest booked there
        self.heap: list = []
        self.seq = 0
        for d in generate(spec, self.horizon_s):
            if d.host is not None:
                h = _host_number(d.host)
                if not 0 <= h < n_h:
                    raise InputError(f"failures: a host failure at t={d.at:g} s names host {d.host!r}; the CloudSim "
                                     f"engine's hosts are numbered 0 .. {n_h - 1}")
            self._push(d.at, "host", d)
        self.rng_mig = np.random.default_rng([spec.seed, len(KINDS)])
        self.open: dict[int, _Record] = {}
        self.closed: list[_Record] = []
        self.injected = 0
        self.migrations_failed = 0

    def _push(self, t: float, kind: str, payload) -> None:
        heapq.heappush(self.heap, (float(t), self.seq, kind, payload))
        self.seq += 1

    # ------------------------------------------------------------ what the engine asks
    def next_at(self) -> float | None:
        return self.heap[0][0] if self.heap else None

    def up_mask(self) -> np.ndarray:
        return self.down_until <= self.e.now

    def unmet_mips(self) -> float:
        return float(self.e.requested[self.stopped].sum())

    def may_migrate(self, guest: int, dst: int) -> bool:
        e = self.e
        return bool(e.host_of[guest] >= 0 and not self.stopped[guest] and self.down_until[dst] <= e.now
                    and e.host_of[guest] != dst)

    def migration_started(self, guest: int, dst: int, t: float, duration: float, seq: int) -> None:
        """A migration started at t: with probability ``migration_p`` it fails at a uniform point of its copy."""
        p = self.spec.migration_p
        if p > 0 and self.rng_mig.random() < p:
            self._push(t + float(self.rng_mig.random()) * duration, "migration", (guest, dst, seq))

    # ------------------------------------------------------------ events
    def fire(self, t: float) -> None:
        """Apply the event due at t (the engine has recorded the state just before and records it after)."""
        _, _, kind, payload = heapq.heappop(self.heap)
        if kind == "host":
            self._crash(payload, t)
        elif kind == "detect":
            self.restart(t)
        elif kind == "boot":
            self._booted(*payload, t)
        elif kind == "repair":
            h = payload
            if self.down_until[h] <= t:
                self.e.ram_free[h] = self.e.ram_cap[h] - self.e.ram_used[h]
                self.restart(t)
        elif kind == "migration":
            g, dst, seq = payload
            if self.e.abort_migration(g, dst, t, seq=seq):
                self.migrations_failed += 1

    def _crash(self, d: Draw, t: float) -> None:
        e = self.e
        up = self.up_mask()
        if d.host is not None:
            h = _host_number(d.host)
            if not up[h]:
                return
        else:
            on = e._hosts_on(t) if e.model.hosts_on_with_guests else (e.h_util_mips > 0) | (e.count > 0)
            cand = np.flatnonzero(on & up)
            if len(cand) == 0:
                return
            h = int(cand[choose(d.pick, len(cand))[0]])
        self.injected += 1
        repair = self.spec.host_repair_s if d.duration_s is None else d.duration_s
        self.down_until[h] = t + repair
        # Migrations into it fail (the guest stays at its source); guests on it stop (those leaving it too).
        for g, dst in list(e.incoming):
            if dst == h and e.host_of[g] != h:
                e.abort_migration(g, h, t)
                self.migrations_failed += 1
        for g in list(e.lists[h]):
            for g2, dst in list(e.incoming):
                if g2 == g:
                    e.abort_migration(g, dst, t)
            self._stop(g, t)
        for g in np.flatnonzero(self.boot_host == h):  # restarted here and still booting: down again
            g = int(g)
            e._book(h, g, -1)
            self.boot_host[g] = -1
            self.boot_token[g] += 1
            self._stop(g, t)
        self.booting_mips[h] = 0.0
        e.ram_free[h] = -np.inf  # takes no guest until it is repaired
        e.shutdown_until[h] = -np.inf
        e.booting_until[h] = 0.0
        self._push(t + self.detection_s, "detect", None)
        self._push(t + repair, "repair", h)

    def _stop(self, g: int, t: float) -> None:
        e = self.e
        h = int(e.host_of[g])
        if h >= 0:
            e.lists[h].remove(g)
            e._book(h, g, -1)
            e.host_of[g] = -1
        if not self.stopped[g]:
            self.stopped[g] = True
            self.down_start[g] = t
        if g not in self.open:
            self.open[g] = _Record(g, t)

    def restart(self, t: float) -> None:
        """Restart every stopped guest whose failure is ``detection_s`` old and that is not booting yet."""
        e = self.e
        due = np.flatnonzero(self.stopped & (self.boot_host < 0) & (t - self.down_start >= self.detection_s - 1e-9))
        for g in sorted((int(g) for g in due), key=lambda g: (-e.g_ram[g], g)):
            h = self.target(e, g) if self.target is not None else None
            if h is None or not self._fits(g, h):
                h = first_fit_restart(e, g)
            if h is None:
                continue  # no room now: tried again at the next tick or repair
            self._boot(g, int(h), t)

    def _fits(self, g: int, h: int) -> bool:
        e = self.e
        return bool(0 <= h < e.n_hosts and self.down_until[h] <= e.now
                    and (not e.model.enforce_ram or e.ram_free[h] >= e.g_ram[g] - 1e-6))

    def _boot(self, g: int, h: int, t: float) -> None:
        e = self.e
        m = e.model
        if m.hosts_on_with_guests:
            off = e.count[h] == 0 and e.shutdown_until[h] <= t and e.booting_until[h] <= t
            e.shutdown_until[h] = -np.inf
        else:
            off = e.h_util_mips[h] == 0 and e.count[h] == 0 and e.booting_until[h] <= t
        if m.boot_delay_s > 0 and off:
            e.booting_until[h] = t + m.boot_delay_s
            e.boots += 1
            if not m.hosts_on_with_guests:
                e.metrics.add_boot(h, m.boot_delay_s)
        e._book(h, g, +1)
        self.boot_host[g] = h
        self.boot_token[g] += 1
        self.boot_mips[g] = e.requested[g]
        self.booting_mips[h] += self.boot_mips[g]
        self._push(max(t, float(e.booting_until[h])) + self.guest_boot_s, "boot", (g, h, int(self.boot_token[g])))

    def _booted(self, g: int, h: int, token: int, t: float) -> None:
        e = self.e
        if self.boot_token[g] != token or self.boot_host[g] != h:
            return
        self.boot_host[g] = -1
        self.booting_mips[h] = max(0.0, self.booting_mips[h] - self.boot_mips[g])
        self.stopped[g] = False
        e.lists[h].append(g)  # its RAM was booked when it started booting
        e.host_of[g] = h
        rec = self.open.pop(g)
        rec.up_at = t
        self.closed.append(rec)

    # ------------------------------------------------------------ accounting
    def finish(self) -> dict:
        h = self.horizon_s
        times = np.array([r.up_at - r.failed_at for r in self.closed] + [h - r.failed_at for r in self.open.values()])
        grace = self.detection_s + self.guest_boot_s + 2 * self.interval_s
        lost = sum(1 for g, r in self.open.items() if self.boot_host[g] < 0 and h - r.failed_at > grace)
        return {
            "guests_lost": int(lost),
            "failover_restarts": len(self.closed),
            "failover_max_s": float(times.max()) if len(times) else 0.0,
            "failover_p95_s": float(np.percentile(times, 95)) if len(times) else 0.0,
            "failure_downtime_s": float(np.clip(times, 0, None).sum()) if len(times) else 0.0,
            "failover_capacity_short": 0,  # no failover reserve on the CloudSim engine
            "failures_injected": self.injected,
            "migrations_failed": self.migrations_failed,
        }
