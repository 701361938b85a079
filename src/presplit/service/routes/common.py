"""Helpers the routers share: JSON responses of pre-encoded bytes, errors, journal rows as API models."""

from __future__ import annotations

import asyncio
import json
import math

import sqlalchemy as sa
from fastapi import HTTPException, Request
from fastapi.responses import Response

from presplit.service import schemas as S
from presplit.service.runner import ServiceError

ERRORS = {404: {"model": S.Error, "description": "Not found"}}
WRITE_ERRORS = {400: {"model": S.Error, "description": "The body is not valid JSON"},
                401: {"model": S.Error, "description": "Missing or invalid bearer token; nothing was changed"},
                409: {"model": S.Error, "description": "Conflicts with the state of the fleet or of the plan"},
                503: {"model": S.Error, "description": "The control loop is not running"}}
READ_ERRORS = {401: {"model": S.Error, "description": "A token is needed for reads from this address"}}


def json_bytes(body: bytes, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type="application/json")


def runner_of(request: Request):
    return request.app.state.runner


def snapshot(request: Request):
    snap = request.app.state.runner.snapshot
    if snap is None:
        raise HTTPException(503, "no observation yet: the control loop is starting or waiting for the lease")
    return snap


def not_found(what: str) -> HTTPException:
    return HTTPException(404, what)


def invalid(loc: tuple, msg: str, typ: str = "value_error") -> HTTPException:
    return HTTPException(422, [{"loc": list(loc), "msg": msg, "type": typ}])


def as_http(exc: ServiceError) -> HTTPException:
    if exc.status == 422:
        return invalid(exc.loc or ("body",), exc.message)
    return HTTPException(exc.status, exc.message)


async def wait(fut, timeout: float = 60.0):
    """Await a Future from the loop's thread; ServiceError -> HTTP error."""
    try:
        return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
    except ServiceError as exc:
        raise as_http(exc) from None
    except asyncio.TimeoutError:
        raise HTTPException(503, f"the control loop did not take the request within {timeout:g} s") from None


def clean(x):
    """JSON-able with finite numbers only ("inf"/"nan" strings of the journal's codec stay strings)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {str(k): clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [clean(v) for v in x]
    return x


def _fnum(x):
    return float(x) if isinstance(x, (int, float)) and math.isfinite(float(x)) else None


def plan_model(row: dict) -> S.Plan:
    return S.Plan(id=int(row["id"]), tick=float(row["tick"] or 0.0), status=str(row["status"]),
                  dry_run=bool(row["dry_run"]), source=row.get("source"), controller=row.get("controller"),
                  created_at=_fnum(row.get("created_at")), finished_at=_fnum(row.get("finished_at")),
                  limits=clean(row.get("limits")), summary=clean(row.get("summary")),
                  actions={str(k): int(v) for k, v in (row.get("actions") or {}).items()})


def plan_row(journal, plan_id: int) -> dict | None:
    from presplit.apply.codec import loads
    from presplit.apply.journal import actions, plans

    with journal.engine.connect() as conn:
        r = conn.execute(sa.select(plans).where(plans.c.id == plan_id)).mappings().first()
        if r is None:
            return None
        counts = conn.execute(sa.select(actions.c.status, sa.func.count()).where(actions.c.plan_id == plan_id)
                              .group_by(actions.c.status)).all()
    return {**dict(r), "summary": loads(r["summary"]), "limits": loads(r["limits"]),
            "actions": {st: n for st, n in counts}}


def action_model(row: dict) -> S.Action:
    a = row["action"] or {}
    return S.Action(plan_id=int(row["plan_id"]), idx=int(row["idx"]), kind=str(row["kind"]),
                    args=clean(a.get("args") or {}), reason=str(a.get("reason") or ""),
                    details=clean(a.get("details") or {}), deps=[int(x) for x in json.loads(row["deps"] or "[]")],
                    hosts=clean(json.loads(row["hosts"] or "[]")), status=str(row["status"]), error=row.get("error"),
                    before=clean(row.get("before")), started_at=_fnum(row.get("started_at")),
                    finished_at=_fnum(row.get("finished_at")))


def action_entry(row: dict, tick: float, state=None) -> S.TimelineEntry:
    """One action as the dashboard's timeline shows it: who, from where to where, why."""
    a = row["action"] or {}
    args = a.get("args") or {}
    kind = str(row["kind"])
    g = args.get("guest")
    guest = None
    if isinstance(g, int):
        guest = state.guests[g].id if state is not None and 0 <= g < state.n_guests else str(g)
    to = args.get("to_domain", args.get("domain")) if kind in ("MoveGuest", "MigrateGuest", "PlaceGuest") else \
        args.get("domain")
    before = row.get("before") or {}
    frm = before.get("guest_domain") if kind in ("MoveGuest", "MigrateGuest") else None
    if frm is not None and frm < 0:
        frm = None
    hosts = [int(h) for h in json.loads(row["hosts"] or "[]") if isinstance(h, int)]
    return S.TimelineEntry(plan_id=int(row["plan_id"]), idx=int(row["idx"]), t=float(tick or 0.0), kind=kind,
                           guest=guest, from_domain=frm if isinstance(frm, int) else None,
                           to_domain=to if isinstance(to, int) else None, hosts=hosts, status=str(row["status"]),
                           reason=str(a.get("reason") or ""), details=clean(a.get("details") or {}))
