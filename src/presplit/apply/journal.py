"""The journal: every plan and every action's life, written before and after it runs.

SQLite by default (``sqlite:///path.db``), PostgreSQL when given a
``postgresql://`` URL (through psycopg 3); SQLAlchemy Core, schema by the
Alembic migrations in ``migrations/``, applied programmatically on connect
(under an advisory lock on PostgreSQL, so controllers starting together do
not race).

Tables: ``plans`` (one per tick that proposed something: status, limits,
dry-run flag), ``actions`` (one row per planned action: the action as JSON,
its dependencies, its status, what the world looked like before it ran),
``events`` (append-only history: intent, started, finished, failed,
reverted, skipped, cancelled, reconciled -- what an operator reads after a
crash) and ``meta`` (controller key/values: last tick, last observed state).

Statuses are :mod:`presplit.apply.status`'s enums, written as their text.
Action statuses: ``planned`` -> ``started`` -> ``succeeded`` | ``failed``
(-> ``reverting`` -> ``reverted`` | ``revert_failed``); ``planned`` ->
``skipped`` (a dependency failed) | ``cancelled``; ``recommended`` in dry-run
plans (-> ``planned`` when approved, ``cancelled`` when rejected, cancelled or
superseded). Plan statuses: ``running``, ``succeeded``, ``partially_failed``,
``failed``, ``cancelled``, ``recommended`` (dry run: waiting for an operator),
``rejected`` (an operator said no) and ``superseded``: a newer recommendation
of the same source (``record_plan(..., supersede=True)``) closed it, in the
transaction that recorded the newer one; its actions are ``cancelled`` with a
``superseded`` event naming the newer plan, its summary holds
``superseded_by`` (plan id) and ``superseded_at`` (that plan's tick).

Decisions on a recommended plan (:meth:`Journal.decide`: approve, reject,
cancel) are one transaction each and apply only while the plan is still in the
status the caller saw, so a decision and a newer recommendation never both win.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from presplit.apply.status import TERMINAL, ActionStatus, PlanStatus
from presplit.plan.codec import decode_action, dumps, encode_action, loads
from presplit.errors import StoreError
from presplit.plan.ordering import ActionPlan, Limits, PlannedAction

HEAD = "0001"
MIGRATION_LOCK = 0x70726573  # advisory lock key while migrating ("pres")

md = sa.MetaData()
plans = sa.Table("plans", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("created_at", sa.Float),
                 sa.Column("tick", sa.Float), sa.Column("status", sa.String), sa.Column("dry_run", sa.Boolean),
                 sa.Column("source", sa.String), sa.Column("limits", sa.Text), sa.Column("controller", sa.String),
                 sa.Column("finished_at", sa.Float), sa.Column("summary", sa.Text))
actions = sa.Table("actions", md, sa.Column("plan_id", sa.Integer, primary_key=True),
                   sa.Column("idx", sa.Integer, primary_key=True), sa.Column("kind", sa.String),
                   sa.Column("action", sa.Text), sa.Column("deps", sa.Text), sa.Column("hosts", sa.Text),
                   sa.Column("link", sa.Text), sa.Column("status", sa.String), sa.Column("before", sa.Text),
                   sa.Column("error", sa.Text), sa.Column("started_at", sa.Float), sa.Column("finished_at", sa.Float))
events = sa.Table("events", md, sa.Column("id", sa.Integer, primary_key=True), sa.Column("plan_id", sa.Integer),
                  sa.Column("idx", sa.Integer), sa.Column("event", sa.String), sa.Column("at", sa.Float),
                  sa.Column("t", sa.Float), sa.Column("detail", sa.Text))
meta = sa.Table("meta", md, sa.Column("key", sa.String, primary_key=True), sa.Column("value", sa.Text))

_MARK = sa.text(
    'UPDATE actions SET status = :status, "before" = COALESCE(:before, "before"), error = COALESCE(:error, error), '
    "started_at = COALESCE(:started_at, started_at), finished_at = COALESCE(:finished_at, finished_at) "
    "WHERE plan_id = :pid AND idx = :idx")
_EVENT = sa.text("INSERT INTO events (plan_id, idx, event, at, t, detail) VALUES (:pid, :idx, :event, :at, :t, :detail)")


def normalise_url(url: str) -> str:
    """``postgresql://`` -> psycopg 3's driver; a bare path -> SQLite."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if "://" not in url:
        return f"sqlite:///{Path(url).resolve()}"
    return url


@dataclass
class JournalPlan:
    id: int
    plan: ActionPlan
    status: dict[int, str]
    before: dict[int, dict]
    tick: float
    plan_status: str
    dry_run: bool


URL_HINT = "sqlite:///path.db, a file path, or postgresql://user@host/db"


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL too malformed to parse is shown as given
        return url


class Journal:
    """The journal at ``url``. ``create=False``: the store must already exist (``presplit state``).

    Every way the store can be unusable -- a malformed or unsupported URL, an unreachable server,
    a file that is not a database or fails SQLite's integrity check -- is a :class:`StoreError`
    naming the store, raised before anything is written.
    """

    def __init__(self, url: str, *, controller: str = "", create: bool = True) -> None:
        self.url = normalise_url(url)
        self.controller = controller
        self.is_postgres = self.url.startswith("postgresql")
        shown = self.url[len("sqlite:///"):] if self.url.startswith("sqlite:///") else _shown(self.url)
        if not self.url.startswith(("sqlite", "postgresql")):
            raise StoreError(f"--db {url}: unsupported journal URL (expected {URL_HINT})")
        if self.url.startswith("sqlite"):
            path = self.url[len("sqlite:///"):] if self.url.startswith("sqlite:///") else ""
            if not path or path == ":memory:":
                raise StoreError(f"--db {url}: a SQLite journal needs a file path (expected {URL_HINT})")
            if not create and not Path(path).exists():
                raise StoreError(f"journal {path}: no such file (give the --db of a controller that ran)")
            if create and not Path(path).parent.is_dir():
                raise StoreError(f"journal {path}: folder {Path(path).parent} does not exist")
        kw = {"connect_args": {"timeout": 30}} if self.url.startswith("sqlite") else {
            "pool_pre_ping": True, "connect_args": {"connect_timeout": 10}}
        if self.is_postgres:
            from presplit.extras import require

            require("postgres", "psycopg")  # SQLAlchemy imports the driver in create_engine
        try:
            self.engine = sa.create_engine(self.url, **kw)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as exc:
            raise StoreError(f"--db {url}: {exc} (expected {URL_HINT})") from None
        if self.url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self._check(create)
            self.migrate()
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise StoreError(f"journal {shown}: cannot connect or open: {_first_line(exc)}") from None
        except sa.exc.DatabaseError as exc:
            self.engine.dispose()
            raise StoreError(f"journal {shown}: {_first_line(exc)} (not a presplit journal, or damaged); "
                             "move it aside or give a fresh --db path") from None
        except StoreError:
            self.engine.dispose()
            raise

    def _check(self, create: bool) -> None:
        """SQLite's integrity check; without ``create``, the store must hold a journal already."""
        with self.engine.connect() as conn:
            if not self.is_postgres:
                verdict = conn.execute(sa.text("PRAGMA quick_check")).scalar()
                if verdict != "ok":
                    raise StoreError(f"journal {self.url[len('sqlite:///'):]}: SQLite's integrity check failed "
                                     f"({verdict}); "
                                     "move it aside or give a fresh --db path")
            if not create and not sa.inspect(conn).has_table("plans"):
                raise StoreError(f"journal {_shown(self.url)}: holds no presplit journal (no plans table)")

    # ------------------------------------------------------------ schema
    def migrate(self) -> None:
        """Bring the schema to HEAD with Alembic (skipped when already there)."""
        with self.engine.begin() as conn:
            if self.is_postgres:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
            if sa.inspect(conn).has_table("alembic_version"):
                if conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == HEAD:
                    return
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------ writing
    def record_plan(self, plan: ActionPlan, *, tick: float, dry_run: bool = False, source: str = "",
                    last_tick: float | None = None, supersede: bool = False) -> int:
        """Write the plan and every action's intent, in one transaction, before anything runs.

        ``last_tick`` is stored in ``meta`` in the same transaction, so a restart neither repeats
        nor skips the tick that made this plan. With ``dry_run`` and ``supersede``, the plans of the
        same ``source`` still ``recommended`` become ``superseded`` in that transaction too (their
        actions ``cancelled``, each with a ``superseded`` event naming this plan): an operator only
        ever sees the newest recommendation of a source as open.
        """
        now = time.time()
        status = str(PlanStatus.RECOMMENDED if dry_run else PlanStatus.RUNNING)
        lim = {k: getattr(plan.limits, k) for k in ("per_host", "per_link", "total")}
        with self.engine.begin() as conn:
            pid = conn.execute(plans.insert().values(
                created_at=now, tick=tick, status=status, dry_run=dry_run, source=source, limits=dumps(lim),
                controller=self.controller)).inserted_primary_key[0]
            if plan.actions:
                conn.execute(actions.insert(), [
                    {"plan_id": pid, "idx": pa.index, "kind": pa.action.kind, "action": dumps(encode_action(pa.action)),
                     "deps": dumps(pa.deps), "hosts": dumps(pa.hosts),
                     "link": dumps(pa.link) if pa.link is not None else None,
                     "status": str(ActionStatus.RECOMMENDED if dry_run else ActionStatus.PLANNED)}
                    for pa in plan.actions])
                conn.execute(events.insert(), [{"plan_id": pid, "idx": pa.index, "event": "intent", "at": now,
                                                "t": tick, "detail": pa.action.reason} for pa in plan.actions])
            if dry_run and supersede:
                self._supersede(conn, int(pid), source, tick, now)
            if last_tick is not None:
                conn.execute(meta.delete().where(meta.c.key == "last_tick"))
                conn.execute(meta.insert().values(key="last_tick", value=dumps(last_tick)))
        return int(pid)

    def _supersede(self, conn, pid: int, source: str, tick: float, now: float) -> list[int]:
        """Close the older recommendations of ``source`` as ``superseded`` by plan ``pid`` (inside its transaction)."""
        # FOR UPDATE (PostgreSQL; SQLite has the database's write lock already, taken by the insert above):
        # an approval racing this one waits, then finds the plan superseded.
        old = [int(r[0]) for r in conn.execute(
            sa.select(plans.c.id).where(plans.c.status == str(PlanStatus.RECOMMENDED), plans.c.source == source,
                                        plans.c.id != pid)
            .order_by(plans.c.id).with_for_update())]
        for oid in old:
            conn.execute(plans.update().where(plans.c.id == oid, plans.c.status == str(PlanStatus.RECOMMENDED))
                         .values(status=str(PlanStatus.SUPERSEDED), finished_at=now))
            _move_actions(conn, oid, ActionStatus.RECOMMENDED, ActionStatus.CANCELLED, "superseded",
                          f"superseded by plan {pid} (t={tick:g})", now, tick)
            summary = {"counts": _counts(conn, oid), "superseded_by": pid, "superseded_at": tick}
            conn.execute(plans.update().where(plans.c.id == oid).values(summary=dumps(summary)))
            conn.execute(events.insert().values(plan_id=oid, event="plan_superseded", at=now, t=tick,
                                                detail=dumps(summary)))
        return old

    def decide(self, plan_id: int, status: str, *, event: str, detail: str | None = None, t: float | None = None,
               was: str = "recommended", summary: dict | None = None) -> bool:
        """An operator's decision on a plan still ``was``, in one transaction; False if it no longer is.

        ``was="recommended"``: approve (``status="running"``: its actions ``planned``, the applier runs
        it), reject (``"rejected"``) or cancel (``"cancelled"``): its actions ``cancelled``.
        ``was="running"``: close an approved plan that has not started (``"cancelled"``: its ``planned``
        actions ``cancelled``). Each moved action gets ``event`` with ``detail``; a closed plan gets its
        counts (plus ``summary``) and a ``plan_<status>`` event. The update is conditional on the status,
        so of a decision, another decision and a newer recommendation (``supersede``) only one wins.
        """
        now = time.time()
        status, was = str(status), str(was)  # the journal holds text, whichever way the caller spelt it
        frm = ActionStatus.RECOMMENDED if was == PlanStatus.RECOMMENDED else ActionStatus.PLANNED
        to = ActionStatus.PLANNED if status == PlanStatus.RUNNING else ActionStatus.CANCELLED
        closed = status != PlanStatus.RUNNING
        with self.engine.begin() as conn:
            vals: dict = {"status": status}
            if closed:
                vals["finished_at"] = now
            n = conn.execute(plans.update().where(plans.c.id == plan_id, plans.c.status == was).values(**vals)).rowcount
            if n != 1:
                return False
            _move_actions(conn, plan_id, frm, to, event, detail, now, t)
            if closed:
                full = {"counts": _counts(conn, plan_id), **(summary or {})}
                conn.execute(plans.update().where(plans.c.id == plan_id).values(summary=dumps(full)))
                conn.execute(events.insert().values(plan_id=plan_id, event=f"plan_{status}", at=now, t=t,
                                                    detail=dumps(full)))
        return True

    def mark(self, plan_id: int, idx: int, status: str, *, event: str | None = None, t: float | None = None,
             before: dict | None = None, error: str | None = None, detail: str | None = None) -> None:
        """Set an action's status and append its event, in one transaction."""
        now = time.time()
        status = str(status)
        params = {"pid": plan_id, "idx": idx, "status": status, "before": dumps(before) if before is not None else None,
                  "error": error, "started_at": now if status == ActionStatus.STARTED else None,
                  "finished_at": now if status in TERMINAL else None, "event": event or status, "at": now, "t": t,
                  "detail": detail if detail is not None else error}
        # Pre-built text statements: this runs twice per action, and building Core statements
        # each time cost more than the SQLite commit itself.
        with self.engine.begin() as conn:
            conn.execute(_MARK, params)
            conn.execute(_EVENT, params)

    def finish_plan(self, plan_id: int, status: str, summary: dict) -> None:
        status = str(status)
        with self.engine.begin() as conn:
            conn.execute(plans.update().where(plans.c.id == plan_id).values(
                status=status, finished_at=time.time(), summary=dumps(summary)))
            conn.execute(events.insert().values(plan_id=plan_id, event=f"plan_{status}", at=time.time(),
                                                detail=dumps(summary)))

    def record_event(self, event: str, *, t: float | None = None, detail: str | None = None) -> None:
        """An event of the controller itself (no plan): a failed tick, a refused change."""
        with self.engine.begin() as conn:
            conn.execute(events.insert().values(event=event, at=time.time(), t=t, detail=detail))

    def is_empty(self) -> bool:
        """Nothing recorded yet: no plan, no tick, no event."""
        with self.engine.connect() as conn:
            return (conn.execute(sa.select(sa.func.count()).select_from(plans)).scalar() == 0
                    and conn.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 0
                    and conn.execute(sa.select(meta.c.value).where(meta.c.key == "last_tick")).scalar() is None)

    def reset(self) -> None:
        """Forget everything (``--new-journal``): every row of every table, in one transaction."""
        with self.engine.begin() as conn:
            for table in (events, actions, plans, meta):
                conn.execute(table.delete())

    def set_meta(self, key: str, value) -> None:
        with self.engine.begin() as conn:
            conn.execute(meta.delete().where(meta.c.key == key))
            conn.execute(meta.insert().values(key=key, value=dumps(value)))

    # ------------------------------------------------------------ reading
    def get_meta(self, key: str, default=None):
        with self.engine.connect() as conn:
            v = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
        return default if v is None else loads(v)

    def open_plans(self) -> list[int]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(plans.c.id).where(plans.c.status == str(PlanStatus.RUNNING))
                                .order_by(plans.c.id))
            return [int(r[0]) for r in rows]

    def load_plan(self, plan_id: int) -> JournalPlan:
        with self.engine.connect() as conn:
            p = conn.execute(sa.select(plans).where(plans.c.id == plan_id)).mappings().one()
            rows = conn.execute(sa.select(actions).where(actions.c.plan_id == plan_id)
                                .order_by(actions.c.idx)).mappings().all()
        pas = tuple(PlannedAction(r["idx"], decode_action(loads(r["action"])), tuple(loads(r["deps"])),
                                  tuple(loads(r["hosts"])), _link(loads(r["link"]))) for r in rows)
        lim = loads(p["limits"]) or {}
        return JournalPlan(plan_id, ActionPlan(pas, Limits(**lim)), {r["idx"]: r["status"] for r in rows},
                           {r["idx"]: loads(r["before"]) or {} for r in rows}, p["tick"], p["status"], p["dry_run"])

    def plans(self, limit: int | None = None) -> list[dict]:
        q = sa.select(plans).order_by(plans.c.id.desc())
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit) if limit else q).mappings().all()
            counts = conn.execute(sa.select(actions.c.plan_id, actions.c.status, sa.func.count())
                                  .group_by(actions.c.plan_id, actions.c.status)).all()
        per: dict[int, dict] = {}
        for pid, st, n in counts:
            per.setdefault(pid, {})[st] = n
        return [{**dict(r), "summary": loads(r["summary"]), "limits": loads(r["limits"]),
                 "actions": per.get(r["id"], {})} for r in rows]

    def actions_of(self, plan_id: int) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(actions).where(actions.c.plan_id == plan_id)
                                .order_by(actions.c.idx)).mappings().all()
        return [{**dict(r), "action": loads(r["action"]), "before": loads(r["before"])} for r in rows]

    def events(self, plan_id: int | None = None) -> list[dict]:
        q = sa.select(events).order_by(events.c.id)
        if plan_id is not None:
            q = q.where(events.c.plan_id == plan_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    # ------------------------------------------------------------ what a restarted controller replays
    def plan_end_times(self) -> dict[float, float]:
        """Per tick, when the plans made at it ended (their last event's time), for ``seen_before``."""
        ends: dict[float, float] = {}
        with self.engine.connect() as conn:
            for tick, end in conn.execute(sa.select(plans.c.tick, sa.func.max(events.c.t))
                                          .select_from(plans.join(events, events.c.plan_id == plans.c.id))
                                          .group_by(plans.c.id)):
                if end is not None:
                    ends[float(tick)] = max(ends.get(float(tick), end), end)
        return ends

    def history(self) -> JournalHistory:
        """The run as a world that replays itself needs it (``Resumes.resume``, the CloudSim world): the last
        tick, every plan at its tick with its actions, and every ``started`` event in the order written."""
        last = self.get_meta("last_tick")
        with self.engine.connect() as conn:
            plan_rows = [(int(pid), float(tick)) for pid, tick in
                         conn.execute(sa.select(plans.c.id, plans.c.tick).order_by(plans.c.id))]
            acts: dict[int, list] = {}
            for pid, _idx, blob in conn.execute(sa.select(actions.c.plan_id, actions.c.idx, actions.c.action)
                                                .order_by(actions.c.plan_id, actions.c.idx)):
                acts.setdefault(int(pid), []).append(decode_action(loads(blob)))
            starts = [(int(eid), int(pid), int(idx), float(at)) for eid, pid, idx, at in
                      conn.execute(sa.select(events.c.id, events.c.plan_id, events.c.idx, events.c.t)
                                   .where(events.c.event == "started").order_by(events.c.id))]
        return JournalHistory(last, plan_rows, acts, starts)


@dataclass(frozen=True)
class JournalHistory:
    """A run's history from the journal: ``last_tick`` (None: nothing ran), ``plans`` as (id, tick),
    ``actions`` per plan id (decoded, in index order), ``starts`` as (event id, plan id, index, time)."""

    last_tick: float | None
    plans: list[tuple[int, float]]
    actions: dict[int, list]
    starts: list[tuple[int, int, int, float]]


def _move_actions(conn, plan_id: int, frm: str, to: str, event: str, detail: str | None, now: float,
                  t: float | None) -> int:
    """Every action of the plan in status ``frm`` to ``to``, each with its event (three statements, any size)."""
    frm = str(frm)
    idx = [int(r[0]) for r in conn.execute(sa.select(actions.c.idx).where(actions.c.plan_id == plan_id,
                                                                         actions.c.status == frm))]
    if idx:
        vals: dict = {"status": str(to)}
        if to in TERMINAL:
            vals["finished_at"] = now
        conn.execute(actions.update().where(actions.c.plan_id == plan_id, actions.c.status == frm).values(**vals))
        conn.execute(events.insert(), [{"plan_id": plan_id, "idx": i, "event": event, "at": now, "t": t,
                                        "detail": detail} for i in idx])
    return len(idx)


def _counts(conn, plan_id: int) -> dict:
    rows = conn.execute(sa.select(actions.c.status, sa.func.count()).where(actions.c.plan_id == plan_id)
                        .group_by(actions.c.status)).all()
    return {str(st): int(n) for st, n in rows}


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(orig).__name__])[0]


def _link(x):
    return tuple(x) if x is not None else None


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL: readers (``presplit state``) never block the controller; NORMAL sync is durable
    # across a process crash (the journal's concern), only a power cut may lose the last commits.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
