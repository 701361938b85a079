"""Optional dependencies ("extras") and the one-line error when one is missing.

The core install (``pip install .``) is what ``presplit simulate`` on the
bundled PlanetLab day and ``presplit run --scenario cloudsim`` need: numpy,
click, rich, python-dateutil, pyyaml, sqlalchemy, alembic, pydantic. Every
heavier dependency belongs to an extra (see ``pyproject.toml`` and the table in
docs/architecture.md) and is imported only inside the function that needs it,
right after a :func:`require` call naming the extra::

    require("service", "fastapi", "uvicorn")
    import uvicorn

so a command whose extra is missing stops with one line
(``presplit serve: error: this command needs the 'service' extra ...: pip
install 'presplit[service]'``) instead of a traceback.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from urllib.parse import unquote, urlparse

from presplit.errors import InputError

# extra -> what it is for (for messages and docs); pyproject.toml lists the packages.
EXTRAS = {
    "forecast": "the gradient-boosted forecasters (lightgbm)",
    "report": "plots and the sweep report (matplotlib, pyarrow)",
    "cluster": "sweeps and sharded forecasts on a Dask cluster (dask[distributed], pyarrow)",
    "postgres": "a PostgreSQL journal (psycopg)",
    "service": "the HTTP API, /metrics and the dashboard (fastapi, uvicorn, prometheus-client)",
    "parquet": "Bitbrains and long-table traces, Parquet fleets (pyarrow)",
}


class MissingExtraError(InputError):
    """A command needs an optional dependency that is not installed; names the extra to install."""

    def __init__(self, extra: str, module: str) -> None:
        self.extra, self.module = extra, module
        super().__init__(f"this command needs the {extra!r} extra ({module} is not installed): "
                         f"{install_hint(extra)}")

    def __reduce__(self):
        return type(self), (self.extra, self.module)


def missing(*modules: str) -> list[str]:
    """The top-level modules among ``modules`` that cannot be imported (found without importing them)."""
    gone = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            gone.append(name)
    return gone


def require(extra: str, *modules: str) -> None:
    """Raise :class:`MissingExtraError` naming ``extra`` unless every module in ``modules`` is importable."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")
    gone = missing(*modules)
    if gone:
        raise MissingExtraError(extra, gone[0])


def install_hint(extra: str) -> str:
    """The command that adds ``extra`` to this installation.

    ``pip install 'presplit[X]'`` for an install from an index; for one from a
    source folder (PEP 610 ``direct_url.json``), that folder, with ``-e`` when
    it is an editable install; through this interpreter's pip when it runs in a
    virtual environment (whose pip need not be on PATH).
    """
    spec, editable = f"presplit[{extra}]", False
    try:
        from importlib.metadata import distribution

        raw = distribution("presplit").read_text("direct_url.json")
        info = json.loads(raw) if raw else {}
        url = urlparse(info.get("url", ""))
        if url.scheme == "file" and url.path:
            spec = f"{unquote(url.path)}[{extra}]"
            editable = bool(info.get("dir_info", {}).get("editable"))
    except Exception:  # noqa: BLE001 - a hint must never fail; fall back to the index name
        pass
    pip = f"{sys.executable} -m pip" if sys.prefix != sys.base_prefix else "pip"
    return f"{pip} install {'-e ' if editable else ''}'{spec}'"
