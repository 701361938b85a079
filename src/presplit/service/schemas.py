"""What the API takes and returns (pydantic v2): the OpenAPI document is generated from these.

Times ``t``/``now``/``tick`` are simulated seconds since the world's start
(wall-clock seconds on real hosts); ``created_at``/``at`` are Unix times. CPU
is in MIPS, memory in MB. Forecasts are for the next control tick: ``p05``
and ``p50`` are window quantiles of the observed demand, ``p95`` is the upper
outlook the ``presplit`` policy acts on (a quantile plus the short-term trend;
for a domain or a host, of its guests' *summed* series, so guests that peak
together count together).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, field_validator

Number = float


class Error(BaseModel):
    detail: str = Field(description="What went wrong, in one sentence.")


class Quantiles(BaseModel):
    p05: Number
    p50: Number
    p95: Number


class Window(BaseModel):
    host: int
    host_name: str
    start: Number
    end: Number
    patch_duration_s: Number
    rule: str
    state: Literal["upcoming", "open", "past"]


class Host(BaseModel):
    id: int
    name: str
    rack: str
    on: bool
    ready: bool
    cpu_mips: Number
    mem_mb: Number
    demand_mips: Number
    utilisation: Number = Field(description="CPU demand / CPU of the host.")
    mem_reserved_mb: Number
    forecast_mips: Quantiles
    forecast_utilisation: Quantiles
    domains: list[int]
    guests: int
    migration_share: Number = Field(description="Share of the host's fabric bandwidth live migrations may take.")
    window: Window | None = Field(None, description="The patch window open now or next, if any.")


class Domain(BaseModel):
    id: int
    host: int
    state: str
    cpu_mips: Number = Field(description="Allotment (services included).")
    mem_mb: Number
    capacity_mips: Number = Field(description="Allotment minus the services' overhead: what guests may reserve.")
    capacity_mb: Number
    free_mips: Number
    free_mb: Number
    services: list[str]
    io_mb_s: list[Number] = Field(description="Disk and network IO (MB/s) the domain's services carry for its guests.")
    ready_at: Number
    patch_started: Number | None
    patch_until: Number | None
    demand_mips: Number
    utilisation: Number = Field(description="CPU demand / capacity.")
    forecast_mips: Quantiles
    forecast_utilisation: Quantiles
    guests: list[str]


class Guest(BaseModel):
    id: str
    index: int
    status: str
    domain: int | None
    host: int | None
    dest_domain: int | None = Field(description="Destination of a migration in flight.")
    vcpus: int
    mips: Number
    reserve_mips: Number
    ram_mb: Number
    demand_mips: Number
    utilisation: Number = Field(description="CPU demand / the guest's size.")
    forecast_mips: Quantiles


class Move(BaseModel):
    plan_id: int
    idx: int
    t: Number = Field(description="The tick whose plan made the move.")
    kind: str
    from_domain: int | None
    to_domain: int | None
    status: str
    reason: str
    details: dict[str, Any]


class GuestDetail(Guest):
    moves: list[Move] = Field(description="Placement, re-pins and live migrations, oldest first, with reasons.")


class Node(BaseModel):
    id: str
    kind: Literal["host", "switch"]
    host: int | None
    rack: str | None


class Link(BaseModel):
    a: str
    b: str
    gbit: Number
    latency_ms: Number
    migrations: int = Field(description="Live migrations in flight over this link now.")


class Fabric(BaseModel):
    nodes: list[Node]
    links: list[Link]


class Status(BaseModel):
    backend: str
    running: bool = Field(description="The control loop is ticking.")
    leader: bool = Field(description="This controller holds the journal's lease.")
    dry_run: bool
    now: Number | None
    last_tick: Number | None
    ticks: int
    interval_s: Number
    pace_s: Number | None = Field(description="Wall seconds per tick (simulated backend).")
    profile: str
    counts: dict[str, int] = Field(description="hosts, hosts_on, domains, guests and guests per status.")
    last_error: Any = Field(None, description="The last error of the loop or of a tick (null when none).")
    failed_ticks: int = Field(0, description="Ticks that raised since the loop started (each journaled).")
    start_epoch_s: Number | None = Field(None, description="Unix time of the world's t=0: the scenario's start, "
                                                           "else its trace's first sample, else the demo's "
                                                           "2011-03-03T00:00Z (real backends: when the loop "
                                                           "started). Date of time t = start_epoch_s + t.")


class Fleet(BaseModel):
    status: Status
    hosts: list[Host]
    domains: list[Domain]
    guests: list[Guest]


class Plan(BaseModel):
    id: int
    tick: Number
    status: str
    dry_run: bool
    source: str | None
    controller: str | None
    created_at: Number | None
    finished_at: Number | None
    limits: dict[str, Any] | None
    summary: Any = None
    actions: dict[str, int] = Field(description="Actions per status.")


class Action(BaseModel):
    plan_id: int
    idx: int
    kind: str
    args: dict[str, Any]
    reason: str
    details: dict[str, Any]
    deps: list[int]
    hosts: list[Any]
    status: str
    error: str | None
    before: dict[str, Any] | None
    started_at: Number | None
    finished_at: Number | None


class PlanDetail(Plan):
    action_list: list[Action]


class Event(BaseModel):
    id: int
    plan_id: int | None
    idx: int | None
    event: str
    at: Number | None
    t: Number | None
    detail: str | None


class TimelineEntry(BaseModel):
    plan_id: int
    idx: int
    t: Number
    kind: str
    guest: str | None
    from_domain: int | None
    to_domain: int | None
    hosts: list[int]
    status: str
    reason: str
    details: dict[str, Any]


class SeriesPoint(BaseModel):
    t: Number
    load: Number
    capacity: Number
    forecast: Quantiles | None = Field(description="What was forecast for this tick one tick earlier.")


class Series(BaseModel):
    kind: Literal["host", "domain", "guest"]
    id: str
    points: list[SeriesPoint]
    next: Quantiles | None = Field(description="The forecast for the next tick.")
    next_t: Number | None


class FleetPoint(BaseModel):
    """The whole fleet at one control tick (after the tick's plan)."""

    t: Number = Field(description="Simulated seconds since the world's start.")
    hosts: int
    hosts_on: int
    capacity_mips: Number = Field(description="CPU of the hosts that are on.")
    demand_mips: Number = Field(description="CPU demand of the guests that have arrived (placed or not).")
    cpu_utilisation: Number = Field(description="Demand of the placed guests / CPU of the hosts that are on.")
    mem_mb: Number = Field(description="RAM of the hosts that are on.")
    mem_reserved_mb: Number = Field(description="Memory booked by the guests (incoming migrations included).")
    mem_utilisation: Number = Field(description="mem_reserved_mb / mem_mb.")
    power_w: Number = Field(description="Electrical power now: each host's SPECpower table at its served load "
                                        "(idle while booting, its off power while off).")
    unserved_share: Number = Field(description="Share of the guests' CPU demand not served now: demand over a "
                                               "domain's capacity, guests pending placement or down.")
    live_migrations: int = Field(description="Live migrations (MigrateGuest) that succeeded since the tick before.")
    repins: int = Field(description="Re-pins between sibling domains (MoveGuest) that succeeded since the tick before.")
    migrating: int = Field(description="Guests in a live migration now.")
    guests_running: int
    guests_pending: int


class FleetHistory(BaseModel):
    start_epoch_s: Number | None = Field(description="Unix time of t=0 (as in /api/status).")
    interval_s: Number = Field(description="The control tick.")
    forecast_horizon_s: Number | None = Field(description="How far ahead the forecasts look (the p95 outlook's "
                                                          "lead time; p05/p50 are for the next tick).")
    points: list[FleetPoint] = Field(description="One per tick, oldest first.")


# ------------------------------------------------------------------ input
class Strict(BaseModel):
    # allow_inf_nan=False: float fields refuse NaN/inf however they arrive (the write routes already refuse
    # NaN/Infinity in the JSON itself, naming the field).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _duration(value, name: str, *, positive: bool = False):
    """A duration field ('15m', '2h', 'PT1H' or seconds, presplit's one grammar): finite, non-negative
    (or positive). The value is kept as given (the operation parses it again)."""
    from presplit.durations import parse_duration

    if value is not None:
        parse_duration(value, what=name, positive=positive)  # a DurationError is a ValueError: pydantic's 422
    return value


def _finite_tree(value, where: str) -> None:
    """Refuse NaN/inf anywhere in a free-form value (policy arguments), without recursion."""
    import math

    stack = [(where, value, 0)]
    while stack:
        path, x, depth = stack.pop()
        if depth > 16:
            raise ValueError(f"{path}: nested deeper than 16 levels")
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError(f"{path}: numbers must be finite (NaN/Infinity are not JSON), got {x!r}")
        if isinstance(x, dict):
            stack.extend((f"{path}.{k}", v, depth + 1) for k, v in x.items())
        elif isinstance(x, (list, tuple)):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in enumerate(x))


class LaunchGuest(Strict):
    """A guest to launch: it arrives pending and the running policy places it at the next tick."""

    id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$",
                           description="Unique guest id (default: api-<n>).")
    vcpus: int = Field(2, ge=1, le=256, strict=True)  # strict: JSON true is not 1 vCPU
    mips_per_vcpu: float | None = Field(None, gt=0, le=1e6, description="Default: the first host's MIPS per core.")
    ram_mb: float = Field(4096, gt=0, le=1e8)
    reserve_mips: float | None = Field(None, gt=0, le=1e9,
                                       description="CPU the placement books (default: size / the fleet's overcommit).")
    cpu_util: list[float] | float = Field(0.5, description="Demand as a share of the guest's size: one value, or "
                                                           "a series per workload step (repeated).")
    dirty_rate_mbps: float = Field(100.0, ge=0, le=1e6)

    @field_validator("cpu_util")
    @classmethod
    def _util(cls, v):
        values = v if isinstance(v, list) else [v]
        if not values:
            raise ValueError("give at least one value")
        if len(values) > 100_000:
            raise ValueError(f"{len(values)} values is too many (at most 100000)")
        for i, x in enumerate(values):
            if not 0.0 <= x <= 1.0:
                raise ValueError(f"value {i} is {x!r}; expected a share between 0 and 1")
        return v


class AddWindow(Strict):
    """A maintenance (patch) window for one host, in simulated seconds."""

    # Strict: JSON true is no host index, and true/false are no durations (pydantic would read 1 and 1.0)
    host: StrictInt | Annotated[str, Field(max_length=200)] = Field(description="Host index or name.")
    start: float | None = Field(None, ge=0, le=1e12, description="Absolute start (seconds since the world's start).")
    start_in: str | StrictFloat | None = Field(None, description="Or: start this long from now, e.g. '15m' or seconds.")
    duration: str | StrictFloat = Field("2h", description="Window length, e.g. '2h' or seconds.")
    patch_duration: str | StrictFloat | None = Field(None,
                                                    description="Patch time per domain (default: the scenario's).")
    rule: str = Field("api", max_length=200)

    @field_validator("start_in", "duration", "patch_duration")
    @classmethod
    def _durations(cls, v, info):
        return _duration(v, info.field_name)


class PolicyIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    args: dict[Annotated[str, Field(max_length=100)], Any] = Field(default_factory=dict, max_length=100)

    @field_validator("args")
    @classmethod
    def _args(cls, v):
        _finite_tree(v, "args")  # Any takes NaN: a policy would compute with it from the next tick on
        return v


class ProfileIn(Strict):
    """The profile a running controller switches to between two ticks (same shape as the YAML file)."""

    policies: list[PolicyIn] = Field(min_length=1, max_length=20)
    caps: dict[str, int | None] = Field(default_factory=dict, description="per_host, per_link, total")
    interval: str | StrictFloat | None = Field(None, description="The control tick, e.g. '5m' or seconds.")
    forecaster: str | None = Field(None, max_length=100, description="The forecast the policies decide on "
                                   "(`presplit forecast models`; not the oracle, which needs the future).")

    @field_validator("interval")
    @classmethod
    def _interval(cls, v):
        return _duration(v, "interval", positive=True)  # 'nan' would become the loop's tick


class Profile(BaseModel):
    policies: list[PolicyIn]
    caps: dict[str, int | None]
    interval_s: Number
    label: str
    source: str
    forecaster: str = Field("outlook", description="The forecast the policies decide on.")


class Decision(Strict):
    note: str | None = Field(None, max_length=500, description="Why (journaled with the decision).")
