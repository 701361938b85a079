"""Leadership: only the controller holding the lease acts; the others wait and take over.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held
  on a dedicated connection. When the leader dies -- even by SIGKILL -- its
  socket closes, the server ends the session and the lock is free; a
  standby polling every ``poll_s`` takes it within about that long, then
  reconciles before acting. ``held()`` pings the connection, so a leader
  that lost its session (network, server restart) stops acting.
- SQLite: one machine, one file: an exclusive ``flock`` on ``<db>.lease``,
  which the kernel drops when the holder dies. A single-holder lease, enough
  to keep two controllers on one SQLite journal from both acting.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import sqlalchemy as sa

DEFAULT_KEY = 0x70726531  # "pre1"


class FileLease:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class PgAdvisoryLease:
    def __init__(self, engine: sa.Engine, key: int = DEFAULT_KEY) -> None:
        self.engine, self.key = engine, key
        self._conn = None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self.engine.connect()
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        conn.commit()  # the lock is session-level; end the read transaction so we hold no snapshot
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(sa.text("SELECT 1")).scalar()
            self._conn.commit()
            return True
        except sa.exc.DBAPIError:
            self._conn = None
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.commit()
                self._conn.close()
            except sa.exc.DBAPIError:
                pass
            self._conn = None


def lease_for(journal, key: int = DEFAULT_KEY):
    """The journal's kind of lease: advisory lock on PostgreSQL, a lock file beside a SQLite database."""
    if journal.is_postgres:
        return PgAdvisoryLease(journal.engine, key)
    db = journal.url.split("///", 1)[-1]
    return FileLease((db if db and db != ":memory:" else "presplit") + ".lease")


def wait_for_lease(lease, *, poll_s: float = 0.5, stop: threading.Event | None = None,
                   on_wait=None) -> bool:
    """Block until the lease is ours (True) or ``stop`` is set (False)."""
    first = True
    while not lease.try_acquire():
        if first and on_wait is not None:
            on_wait()
        first = False
        if stop is not None and stop.wait(poll_s):
            return False
        if stop is None:
            time.sleep(poll_s)
    return True
