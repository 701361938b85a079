"""Stores that know what they are: the journal and the world store bound to each other and to their inputs.

A controller keeps two stores: the journal (plans, actions, events; SQLite or
PostgreSQL) and, for a simulated world, the world store (its own SQLite file,
see :mod:`presplit.backends.sim_world`). Either can be deleted, emptied,
replaced or shared by mistake; what must never happen then is a silent
rebuild -- a fresh world beside a journal that still holds the old one's
plans, a journal that runs on a world made by another scenario, two
controllers writing one world. So the first run *binds* them:

- the journal's ``meta`` row ``store`` records its own ``journal_id``, the
  scenario's name and a digest of its inputs (the scenario file's text, and
  a fingerprint of every trace it reads), and the world store's path and
  ``world_id``;
- the world store's ``meta`` records the ``journal_id`` it belongs to and
  the same scenario and digest.

Every later start checks both ways before anything is written (:func:`open_bound`)
and stops with a :class:`~presplit.errors.StoreError` that says what does not
match and what to do: restore the store, give a fresh path, or pass
``--new-journal``, which discards the journal's history and moves the old
world store aside (it is renamed, never deleted).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from presplit.errors import StoreError

HINT = "give a fresh --db (and --world) path, or pass --new-journal to start afresh"


@dataclass(frozen=True)
class Inputs:
    """What a run is made of: the scenario's name and a digest of its files."""

    scenario: str
    digest: str

    def describe(self) -> str:
        return f"scenario {self.scenario!r} (inputs {self.digest[:12]})"


def _fingerprint(path: Path, h) -> None:
    """Feed ``path`` into ``h``: a file's size and its first and last 64 KiB; a folder's files likewise."""
    path = Path(path)
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.is_file():
                _fingerprint(child, h)
        return
    if not path.is_file():
        h.update(f"missing:{path.name}".encode())
        return
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    with path.open("rb") as fh:
        h.update(fh.read(65536))
        if size > 65536:
            fh.seek(max(size - 65536, 65536))
            h.update(fh.read())


def world_path_for(db: str, world: str | None = None) -> Path:
    """Where the simulated world's store is: ``world`` when given, else beside a SQLite journal
    (``<db>.world``), else ``presplit-world.sqlite`` in the working directory."""
    if world:
        return Path(world)
    from presplit.apply.journal import normalise_url

    url = normalise_url(db)
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///"):] + ".world")
    return Path("presplit-world.sqlite")


def scenario_inputs(name: str, scenario=None, trace: str | None = None) -> Inputs:
    """The :class:`Inputs` of a run of ``scenario`` (a loaded domain scenario, or None for a CloudSim one)."""
    h = hashlib.sha256()
    label = name
    traces: list[Path] = []
    if scenario is not None:
        label = scenario.name or name
        if scenario.path is not None and Path(scenario.path).is_file():
            h.update(Path(scenario.path).read_bytes())
        else:
            h.update(repr(scenario).encode())
        traces = [f.trace for f in scenario.feeds if f.trace is not None]
    else:
        h.update(name.strip().lower().encode())
        from presplit.scenarios import SCENARIOS

        if name.strip().lower() in SCENARIOS:
            traces = list(SCENARIOS[name.strip().lower()]()[1])
    if trace is not None:
        traces = [Path(trace)]
        h.update(b"trace-override")
    for t in traces:
        _fingerprint(Path(t), h)
    return Inputs(label, h.hexdigest())


def _record(journal) -> dict | None:
    rec = journal.get_meta("store")
    return rec if isinstance(rec, dict) else None


def start_afresh(journal, world_path: Path | None) -> Path | None:
    """``--new-journal``: forget the journal's history and move the world store aside; returns where it went."""
    journal.reset()
    if world_path is None or not Path(world_path).exists():
        return None
    aside = Path(f"{world_path}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{world_path}{suffix}")
        if src.exists():
            src.rename(Path(f"{aside}{suffix}"))
    return aside


def check_journal(journal, inputs: Inputs) -> dict | None:
    """Refuse a journal made for other inputs; returns its store record (None for a new journal)."""
    rec = _record(journal)
    if rec is None:
        return None
    if rec.get("digest") != inputs.digest:
        was = Inputs(rec.get("scenario", "?"), rec.get("digest", "?"))
        raise StoreError(f"journal {journal_label(journal)} belongs to {was.describe()}, not {inputs.describe()}: "
                         f"{HINT}")
    return rec


def open_bound(journal, inputs: Inputs, world_path: Path, open_world):
    """Check the journal and the world store against each other and ``inputs``, open the world, bind both.

    ``open_world(path)`` opens or creates the world store (:func:`presplit.backends.sim_world.create_world`).
    Every mismatch raises :class:`StoreError` before anything is written to either store.
    """
    check_stores(journal, inputs, world_path)
    world = open_world(Path(world_path))
    bind(journal, inputs, world)
    return world


def check_stores(journal, inputs: Inputs, world_path: Path | None) -> None:
    """Every check of :func:`open_bound`, reading only (a controller runs it before it takes the lease)."""
    from presplit.backends.sim_world import SimWorld, holds_world

    rec = check_journal(journal, inputs)
    if world_path is None:
        return
    world_path = Path(world_path)
    exists = holds_world(world_path)  # raises for a damaged or foreign file
    if rec is not None and rec.get("world_id") and not exists:
        raise StoreError(f"world store {world_path} is missing or empty, but journal {journal_label(journal)} "
                         f"holds the history of world {rec['world_id'][:12]} (made at {rec.get('world')}): "
                         f"restore it, or {HINT}")
    if exists:
        peek = SimWorld.peek_meta(world_path)
        owner = peek.get("journal_id")
        jid = rec.get("journal_id") if rec else None
        if owner and owner != jid:
            raise StoreError(f"world store {world_path} belongs to another journal ({owner[:12]}); this journal "
                             f"{journal_label(journal)} is {'new' if jid is None else jid[:12]}: two controllers "
                             f"must not share a world; {HINT}")
        if rec is not None and rec.get("world_id") and peek.get("world_id") != rec["world_id"]:
            raise StoreError(f"world store {world_path} is world {str(peek.get('world_id'))[:12]}, but journal "
                             f"{journal_label(journal)} holds the history of world {rec['world_id'][:12]}: {HINT}")
        if peek.get("digest") and peek["digest"] != inputs.digest:
            was = Inputs(peek.get("scenario", "?"), peek["digest"])
            raise StoreError(f"world store {world_path} was made from {was.describe()}, not {inputs.describe()}: "
                             f"{HINT}")
        if not owner and rec is None and journal.is_empty() and peek.get("changes", 0) > 1:
            raise StoreError(f"world store {world_path} has a history ({peek['changes']} changes) but journal "
                             f"{journal_label(journal)} is empty: the world's plans would be lost; {HINT}")


def bind(journal, inputs: Inputs, world=None) -> None:
    """Record the binding in both stores (idempotent)."""
    rec = _record(journal) or {}
    jid = rec.get("journal_id") or uuid.uuid4().hex
    new = {"journal_id": jid, "scenario": inputs.scenario, "digest": inputs.digest}
    if world is not None:
        new.update(world=str(Path(world.path).resolve()), world_id=world.world_id)
        for key, value in (("journal_id", jid), ("scenario", inputs.scenario), ("digest", inputs.digest)):
            if world.get_meta(key) != value:
                world.set_meta(key, value)
    if rec != new:
        journal.set_meta("store", new)


def journal_label(journal) -> str:
    from presplit.apply.journal import _shown

    url = _shown(journal.url)
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
