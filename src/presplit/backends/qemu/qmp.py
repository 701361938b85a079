"""A small synchronous QMP (QEMU Machine Protocol) client over a unix socket.

Owns talking to one QEMU process: connect and negotiate capabilities, run a
command and return its result (or raise :class:`QMPError` with QEMU's error
class and description), and keep the asynchronous events that arrive meanwhile.

Why not the ``qemu.qmp`` package: it works (it was used on this machine kind),
but it is asyncio-first and its synchronous face is the ``legacy`` shim, which
creates or reuses the thread's event loop (so it cannot be used from code that
already runs one) and raises ``EOFError`` on ``disconnect()`` after ``quit``.
The backend is synchronous, and QMP is line-delimited JSON with a greeting, one
negotiation command and request/response pairs interleaved with events, so the
client below is smaller than the glue around the package would be, and it
adds no dependency. (QMP spec: qemu/docs/interop/qmp-spec.txt.)
"""

from __future__ import annotations

import itertools
import json
import socket
import time
from pathlib import Path
from typing import Any

from presplit.errors import PresplitError


class QMPError(PresplitError, RuntimeError):
    """QEMU answered a command with an error, or the connection failed."""

    def __init__(self, message: str, error_class: str | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class


class QMPClient:
    """One connection to a QEMU monitor socket (``-qmp unix:PATH,server=on,wait=off``)."""

    def __init__(self, path: str | Path, *, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.greeting: dict[str, Any] | None = None
        self._sock: socket.socket | None = None
        self._buf = b""
        self._ids = itertools.count(1)

    # -- connection ---------------------------------------------------------
    def connect(self, *, wait: float = 10.0) -> dict[str, Any]:
        """Connect (retrying while QEMU creates the socket) and negotiate."""
        deadline = time.monotonic() + wait
        last_error: Exception | None = None
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                last_error = exc
                if time.monotonic() >= deadline:
                    raise QMPError(f"cannot connect to QMP socket {self.path}: {exc}") from last_error
                time.sleep(0.05)
        self._sock = sock
        self._buf = b""
        self.greeting = self._read_message()
        if "QMP" not in self.greeting:
            raise QMPError(f"unexpected QMP greeting on {self.path}: {self.greeting}")
        self.execute("qmp_capabilities")
        return self.greeting

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> QMPClient:
        if self._sock is None:
            self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # -- commands -------------------------------------------------------------
    def execute(self, command: str, arguments: dict[str, Any] | None = None, *,
                timeout: float | None = None) -> Any:
        """Run ``command`` and return its ``return`` value.

        Events that arrive before the reply are appended to :attr:`events`.
        """
        if self._sock is None:
            raise QMPError(f"QMP {command}: not connected to {self.path}")
        msg_id = f"presplit-{next(self._ids)}"
        request: dict[str, Any] = {"execute": command, "id": msg_id}
        if arguments:
            request["arguments"] = arguments
        self._sock.settimeout(timeout or self.timeout)
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
            while True:
                reply = self._read_message()
                if "event" in reply:
                    self.events.append(reply)
                    continue
                if reply.get("id") != msg_id:
                    continue  # a late reply to an earlier, timed-out command
                break
        except (OSError, ValueError) as exc:
            self.close()
            raise QMPError(f"QMP {command} on {self.path} failed: {exc}") from exc
        if "error" in reply:
            err = reply["error"]
            raise QMPError(f"QMP {command} {arguments or ''}: {err.get('desc')}", err.get("class"))
        return reply.get("return")

    def pop_events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Remove and return the buffered events (only those called ``name``)."""
        taken = [e for e in self.events if name is None or e["event"] == name]
        self.events = [e for e in self.events if e not in taken]
        return taken

    def _read_message(self) -> dict[str, Any]:
        assert self._sock is not None
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                self.close()
                raise QMPError(f"QMP socket {self.path} closed by QEMU")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)
