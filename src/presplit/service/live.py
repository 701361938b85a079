"""Live updates as Server-Sent Events (``GET /api/live``).

The control loop's thread publishes; every open stream has a bounded asyncio
queue on the server's event loop (a slow reader loses events rather than
holding the loop back: the next ``tick`` event tells it to refetch anyway).

Events: ``tick`` (``{"seq", "now", "last_tick", "ticks"}``: a new snapshot is
served) and ``actions`` (timeline entries new or changed since the last one).
A comment line every 15 s keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import json
import threading

_CLOSE = object()


class LiveHub:
    def __init__(self, queue_size: int = 64, keepalive_s: float = 15.0) -> None:
        self.queue_size = queue_size
        self.keepalive_s = keepalive_s
        self._subs: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()
        self._lock = threading.Lock()
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, event: str, data) -> None:
        """From any thread."""
        msg = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        self._send(msg)

    def close(self) -> None:
        self.closed = True
        self._send(_CLOSE)

    def _send(self, item) -> None:
        with self._lock:
            subs = list(self._subs)
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(_put, q, item)
            except RuntimeError:  # the loop is closed
                pass

    async def stream(self, is_disconnected):
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue(self.queue_size)
        sub = (loop, q)
        with self._lock:
            self._subs.add(sub)
        try:
            yield b"retry: 2000\n: presplit live\n\n"
            while not self.closed:
                try:
                    item = await asyncio.wait_for(q.get(), self.keepalive_s)
                except asyncio.TimeoutError:
                    if await is_disconnected():
                        break
                    yield b": keepalive\n\n"
                    continue
                if item is _CLOSE:
                    break
                yield item
        finally:
            with self._lock:
                self._subs.discard(sub)


def _put(q: asyncio.Queue, item) -> None:
    if item is _CLOSE:
        while q.full():
            q.get_nowait()
        q.put_nowait(item)
        return
    if not q.full():
        q.put_nowait(item)
