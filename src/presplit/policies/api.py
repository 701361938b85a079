"""The policy API: what a policy implements for each engine, what it is given and what it returns.

presplit has two simulators, and a policy is written for one of them (or both):

``"cloudsim"`` -- the CloudSim-compatible engine (:class:`presplit.sim.engine.Engine`)
    The engine calls :meth:`CloudSimEnginePolicy.place_initial` once, at
    start-up, and then, every ``model.interval_s`` (300 s) tick, after the
    fleet-wide update, :meth:`CloudSimEnginePolicy.optimise` when the policy's
    ``migrates`` is true. ``optimise`` returns ``[(guest, destination host),
    ...]``; the engine starts those live migrations at once (they take guest
    RAM / migration bandwidth, a switched-off destination boots first). The
    policy reads the engine (:class:`CloudSimEngineState`) and must not change
    it, except through ``engine.create`` inside ``place_initial``. A policy
    with ``non_power_aware = True`` is billed as if every host ran at full
    power (CloudSim's NPA). ``presplit simulate``, ``presplit sweep`` and
    ``presplit run --scenario cloudsim`` run this engine.

``"domains"`` -- the split-domain engine (:func:`presplit.sim.domain_engine.run_domains`)
    Every tick the engine advances the state, feeds the guests' demand, and
    calls :meth:`DomainEnginePolicy.propose` with the state (an immutable
    :class:`~presplit.model.cluster.ClusterState`), the forecasts (``None``
    unless the policy sets ``needs_forecasts = True``; then an object with
    ``guest_quantile(q, horizon_steps)``, see :class:`DomainForecasts`) and the
    time in seconds. It returns a list of :mod:`presplit.plan` actions
    (``PlaceGuest``, ``MigrateGuest``, ``MoveGuest``, ``SplitDomain``,
    ``MergeDomains``, ``PatchDomain``, ``PowerOn``, ``PowerOff``, ...), each
    with a ``reason``; the engine applies them in order through
    :func:`presplit.plan.apply_action` (a refused action is logged and
    skipped). The control loop (``presplit run``, ``presplit serve``) calls
    the same method on the real or stored world. Domain scenarios
    (``--scenario bighost-patch`` or a YAML file with ``engine: domains``)
    and ``presplit explain`` run this engine.

A plugin class says which engine it runs on with a class attribute::

    engine = "cloudsim"              # or "domains", or ("cloudsim", "domains")

(``kind``, the attribute the built-in domain policies use, is read too.) It
is built with no arguments (``Class()``, or ``Class(seed=N)`` when it takes
a ``seed``), so every parameter needs a default. A dataclass whose numeric
fields are declared with :func:`param` gets its parameters listed by
``presplit policies``, set from a profile's ``args`` (checked against the
declared ranges) and swept by ``presplit sweep --param``.

How a plugin is named wherever a policy name is accepted (``--policy``,
profiles): ``path/to/file.py:Class`` (a file, imported by path; relative
paths are relative to the current directory), ``package.module:Class`` (a
module on the Python path) or the name of an entry point in the
``presplit.policies`` group of an installed package::

    [project.entry-points."presplit.policies"]
    mine = "mypackage.policies:Mine"

``docs/writing-a-policy.md`` walks through a complete example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from presplit.policies.params import param

if TYPE_CHECKING:  # types only: importing this module stays cheap
    import numpy as np

    from presplit.model.cluster import ClusterState
    from presplit.plan import Action

__all__ = [
    "ENGINES", "REQUIRED", "CloudSimEnginePolicy", "CloudSimEngineState", "DomainEnginePolicy", "DomainForecasts",
    "Policy", "first_fit", "param",
]

ENGINES = ("cloudsim", "domains")
"""The engines a policy can declare."""

REQUIRED: dict[str, tuple[str, ...]] = {
    "cloudsim": ("place_initial", "optimise", "migrates"),
    "domains": ("propose",),
}
"""What a class must have to run on each engine (methods, and ``migrates`` on the CloudSim engine)."""


class DomainForecasts(Protocol):
    """What a forecasting domain-engine policy is given (``needs_forecasts = True``), in the simulator
    (:mod:`presplit.sim.forecast_feed`) and in the control loop alike."""

    def guest_quantile(self, q: float, horizon_steps: int) -> np.ndarray:
        """Per guest, the q-quantile of CPU demand (MIPS) over the next ``horizon_steps`` ticks."""


@runtime_checkable
class DomainEnginePolicy(Protocol):
    """What a class needs to run on the split-domain engine and in the control loop (``engine = "domains"``).

    The least a plugin must have (checked with ``isinstance``); :class:`Policy` is the whole contract.
    """

    def propose(self, state: ClusterState, forecasts: DomainForecasts | None, now: float) -> list[Action]:
        """The actions to take at time ``now`` (seconds), in the order they should be applied.

        ``state`` is immutable: to try an action, ``presplit.plan.apply_action(state, action)``
        returns the state it would lead to (what the built-in policies do to plan a whole tick).
        """


class Policy(DomainEnginePolicy, Protocol):
    """A policy as the split-domain engine, the control loop and the service use it.

    ``name``
        How rows, plans and logs name it (the built-ins: ``presplit``, ``evacuate``). A plugin
        class may leave it out: it is then named by its spec, as the user spelt it.
    ``needs_forecasts``
        True: ``propose`` (and ``recover``) get :class:`DomainForecasts`; False or absent: ``None``,
        and no forecast is computed for it.
    ``propose(state, forecasts, now)``
        See :class:`DomainEnginePolicy`.

    Optional, read with ``getattr`` by the failure model (:mod:`presplit.sim.failures`):
    ``recover(state, forecasts, now) -> list[Action]`` (actions once a failure is detected),
    ``detection_s`` (how long a failure goes unseen, default 30 s) and
    ``restart_target(state, guest)`` (where a stopped guest restarts).
    """

    name: str
    needs_forecasts: bool


class CloudSimEngineState(Protocol):
    """What a CloudSim-engine policy may read on the engine (arrays indexed by guest or host number).

    Guests: ``g_mips`` (MIPS), ``g_ram`` (MB), ``requested`` (MIPS asked at the last update),
    ``host_of`` (-1 once CloudSim dropped an idle guest), ``alive``, ``in_migration``,
    ``history`` (utilisation, newest first, ``history_len`` samples), ``last_migration_at`` (s).
    Hosts: ``h_pe`` (MIPS per core), ``h_total`` (MIPS), ``h_ram`` (MB), ``ram_free`` (MB, as
    placed at start-up), ``h_util_mips`` (allocated at the last update; 0 means switched off),
    ``h_power`` (SPECpower table, W at 0, 10, ..., 100 %), ``lists`` (each host's guests, incoming
    migrations included), ``host_received_at`` (s). ``model`` holds the engine's constants
    (``interval_s``, ``boot_delay_s``, ...), ``now`` the time of the last update.
    """

    n_hosts: int
    n_guests: int
    now: float
    model: Any
    g_mips: np.ndarray
    g_ram: np.ndarray
    requested: np.ndarray
    host_of: np.ndarray
    alive: np.ndarray
    in_migration: np.ndarray
    history: np.ndarray
    history_len: int
    last_migration_at: np.ndarray
    h_pe: np.ndarray
    h_total: np.ndarray
    h_ram: np.ndarray
    ram_free: np.ndarray
    h_util_mips: np.ndarray
    h_power: np.ndarray
    host_received_at: np.ndarray
    lists: list[list[int]]

    def create(self, guest: int, host: int) -> None:
        """Start ``guest`` on ``host`` (only inside ``place_initial``)."""

    def utilisation_at(self, t: float) -> np.ndarray:
        """Every guest's CPU utilisation (0-1) at time ``t``, as the trace says."""


@runtime_checkable
class CloudSimEnginePolicy(Protocol):
    """A policy of the CloudSim-compatible engine (``engine = "cloudsim"``)."""

    migrates: bool
    """False: ``optimise`` is never called (placement-only policies such as DVFS)."""

    def place_initial(self, engine: CloudSimEngineState) -> None:
        """Start every guest: ``engine.create(guest, host)`` once per guest, or raise if the fleet is too small.

        At start-up a guest asks for its full MIPS and RAM (as in CloudSim); :func:`first_fit` does
        what CloudSim's simple policy does.
        """

    def optimise(self, engine: CloudSimEngineState) -> list[tuple[int, int]]:
        """The migrations to start at this tick: ``[(guest, destination host), ...]``."""


def first_fit(engine: CloudSimEngineState) -> None:
    """Start-up placement of CloudSim's simple policy: each guest, in order, on the first host that fits.

    Usable as a CloudSim-engine policy's ``place_initial`` (``place_initial = staticmethod(first_fit)``).
    """
    from presplit.policies.cloudsim.baselines import FirstFit

    FirstFit().place_initial(engine)


def missing(cls: type, engine: str) -> list[str]:
    """What ``cls`` lacks to run on ``engine`` (empty when nothing)."""
    signatures = {"place_initial": "place_initial(engine)", "optimise": "optimise(engine)",
                  "propose": "propose(state, forecasts, now)"}
    out = []
    for name in REQUIRED[engine]:
        if name == "migrates":
            if not hasattr(cls, name):
                out.append("a migrates class attribute")
        elif not callable(getattr(cls, name, None)):
            out.append(signatures[name])
    return out
