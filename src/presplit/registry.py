"""One shape for presplit's name -> factory registries: policies, forecasters, backends.

A :class:`Registry` maps a name, as the command line spells it, to a factory
(a class or a function that builds the thing), with a one-line summary for
listings. It is explicit and refuses a second registration of a name (the
Kubernetes scheduler framework's plugin registry does the same), so a typo or
a clash fails loudly at import time instead of silently replacing an entry.

Packages add entries without touching presplit through Python entry points::

    # pyproject.toml of a package "acme-presplit"
    [project.entry-points."presplit.forecasters"]
    acme-arima = "acme_presplit.models:Arima"

Entry points are read (``importlib.metadata``) when a name is looked up or the
names are listed, never at import, and a name's entry point is imported only
when that name is asked for (once per process). Built-in names win over entry points. An entry point that fails to load
is an error naming the entry point and its distribution.

A registry whose built-ins live in modules that register themselves on import
(so that heavy dependencies load only when used) passes ``builtins``: a
function run once before the first lookup or listing.

This is a base-layer module: it imports nothing from presplit but
:mod:`presplit.errors`.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from presplit.errors import InputError

__all__ = ["Entry", "Registry"]

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name: its factory, a one-line summary, and where it came from."""

    name: str
    factory: T
    summary: str = ""
    origin: str = "built-in"  # or "entry point NAME = module:attr (distribution)"


def short_error(exc: BaseException) -> str:
    """An exception's text on one line, cut to 300 characters (its class name when it has none)."""
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def entry_point_origin(ep) -> str:
    """``entry point NAME = module:attr (distribution)``: how errors and listings name an entry point."""
    dist = getattr(getattr(ep, "dist", None), "name", None)
    return f"entry point {ep.name} = {ep.value}" + (f" ({dist})" if dist else "")


class Registry(Generic[T]):
    """Names -> factories of one kind of thing (see the module docstring).

    ``kind`` names the thing in errors (``"forecast model"``); ``group`` is the
    entry-point group that packages add to (None: none); ``error`` is the
    exception class (built from one message) that an unknown name or a broken
    entry point raises: an :class:`~presplit.errors.InputError` subclass for
    names a user types (``PolicyError``, ``ForecastError``), or the layer's own
    (``BackendError``); ``builtins`` is run once before the first lookup.

    A built-in whose code is heavy or optional is best registered as a small
    function that imports it when called (the ``qemu`` backend), so that
    looking up or listing names never imports it.

    ``len()``, ``in`` and iteration see the names (built-ins first, then entry
    points that no built-in shadows) without importing any entry point;
    :meth:`entries` loads them for a listing.
    """

    def __init__(self, kind: str, *, group: str | None = None, error: type[Exception] = InputError,
                 builtins: Callable[[], Any] | None = None) -> None:
        self.kind, self.group, self.error = kind, group, error
        self._entries: dict[str, Entry[T]] = {}
        self._builtins = builtins
        self._lock = threading.RLock()  # builtins load once even when two threads ask first
        self._loaded: dict[tuple[str, str], Entry[T]] = {}  # entry points loaded, by (name, value)

    # ------------------------------------------------------------------ building
    def register(self, name: str, factory: T | None = None, *, summary: str = "", origin: str = "built-in"):
        """Add ``name``; a name registered twice is refused (ValueError).

        Without ``factory`` it is a decorator: ``@REGISTRY.register("sim", summary="...")``.
        """
        if factory is None:
            def decorate(f: T) -> T:
                self.register(name, f, summary=summary, origin=origin)
                return f
            return decorate
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(f"{self.kind} name {name!r} is not a name")
        with self._lock:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered "
                                 f"({self._entries[name].origin}); pick another name")
            self._entries[name] = Entry(name, factory, " ".join(summary.split()), origin)
        return factory

    def _ensure_builtins(self) -> None:
        if self._builtins is not None:
            with self._lock:
                load, self._builtins = self._builtins, None
                if load is not None:
                    load()

    # ------------------------------------------------------------------ entry points
    def entry_points(self) -> dict[str, Any]:
        """Installed entry points of ``group`` by name, not loaded.

        Read again at every call (a package installed while the process runs, or a test's, is seen);
        a broken installation (unreadable metadata) must not break the built-ins: it reads as none.
        """
        if self.group is None:
            return {}
        from importlib import metadata

        try:
            found = metadata.entry_points(group=self.group)
        except Exception:  # noqa: BLE001 - see the docstring
            return {}
        eps: dict[str, Any] = {}
        for ep in found:
            eps.setdefault(ep.name, ep)  # the first one on sys.path wins, as imports do
        return eps

    def load_entry_point(self, ep) -> Any:
        """``ep.load()``, or this registry's error naming the entry point and its distribution."""
        try:
            return ep.load()
        except Exception as exc:  # noqa: BLE001 - the plugin's failure, reported in one line
            raise self.error(f"{self.kind} {ep.name!r}: loading {entry_point_origin(ep)} failed: "
                             f"{type(exc).__name__}: {short_error(exc)}") from None

    def _from_entry_point(self, name: str) -> Entry[T] | None:
        ep = self.entry_points().get(name)
        if ep is None:
            return None
        key = (ep.name, ep.value)
        if key in self._loaded:  # imported once per process
            return self._loaded[key]
        factory = self.load_entry_point(ep)
        if not callable(factory):
            raise self.error(f"{self.kind} {name!r}: {entry_point_origin(ep)} is a {type(factory).__name__}, "
                             "not a class or function")
        doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()
        entry = Entry(name, factory, doc[0].rstrip(".") if doc else "", entry_point_origin(ep))
        with self._lock:
            return self._loaded.setdefault(key, entry)

    # ------------------------------------------------------------------ looking up
    def __contains__(self, name: object) -> bool:
        self._ensure_builtins()
        return name in self._entries or name in self.entry_points()

    def names(self) -> list[str]:
        """Built-in names in registration order, then entry points no built-in shadows, sorted."""
        self._ensure_builtins()
        return list(self._entries) + sorted(n for n in self.entry_points() if n not in self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def shadowed(self) -> dict[str, Any]:
        """Entry points whose name a built-in already has (they never load): name -> entry point."""
        self._ensure_builtins()
        return {n: ep for n, ep in self.entry_points().items() if n in self._entries}

    def entry(self, name: str) -> Entry[T]:
        """The entry ``name`` (importing its entry point if it is one), or this registry's error."""
        self._ensure_builtins()
        found = self._entries.get(name) or self._from_entry_point(name)
        if found is None:
            raise self.error(self.unknown(name))
        return found

    def get(self, name: str) -> T:
        """The factory registered as ``name``; an unknown name raises this registry's error."""
        return self.entry(name).factory

    __getitem__ = get

    def create(self, name: str, /, *args, **kwargs):
        """``get(name)(*args, **kwargs)``."""
        return self.get(name)(*args, **kwargs)

    def entries(self) -> list[Entry[T]]:
        """Every entry, entry points loaded (for a listing); a broken entry point raises."""
        return [self.entry(n) for n in self.names()]

    def unknown(self, name: str) -> str:
        """``unknown forecast model 'x' (did you mean 'y'?); known: a, b, c``."""
        known = self.names()
        close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; known: {', '.join(known) or '(none)'}"
