"""Helpers the routers share: JSON responses of pre-encoded bytes, errors, journal rows as API models."""

from __future__ import annotations

import asyncio
import json
import math

import sqlalchemy as sa
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute

from presplit.service import schemas as S
from presplit.service.errors import ServiceError

ERRORS = {404: {"model": S.Error, "description": "Not found"}}
WRITE_ERRORS = {400: {"model": S.Error, "description": "The body is not valid JSON"},
                401: {"model": S.Error, "description": "Missing or invalid bearer token; nothing was changed"},
                409: {"model": S.Error, "description": "Conflicts with the state of the fleet or of the plan"},
                413: {"model": S.Error, "description": "The body is larger than the service takes"},
                415: {"model": S.Error, "description": "The body is not sent as application/json"},
                503: {"model": S.Error, "description": "The control loop is not running"}}
READ_ERRORS = {401: {"model": S.Error, "description": "A token is needed for reads from this address"}}


# ------------------------------------------------------------------ the edge of the write routes
# The largest legitimate body is a launch with a cpu_util series of 100,000 shares: about 2 MB at full float
# precision, so the cap is 4 MiB rather than 1.
MAX_BODY = 4 << 20
MAX_DEPTH = 32  # no input model nests deeper than ~6; deeper bodies only make the encoders recurse
FINITE = "numbers must be finite (NaN/Infinity are not JSON)"


class BodyTooLarge(Exception):
    """Raised by the app's receive wrapper (app.BodyLimit) once a request body passes MAX_BODY."""


class _NonFinite:
    def __init__(self, token: str) -> None:
        self.token = token


def _float(text: str):
    x = float(text)
    return x if math.isfinite(x) else _NonFinite(text)  # 1e999 reads as inf: no finite number either


def _too_large(n: int | None = None) -> HTTPException:
    most = f"{MAX_BODY} bytes ({MAX_BODY >> 20} MiB)"
    return HTTPException(413, f"the request body is {n} bytes; the service takes at most {most}" if n is not None
                         else f"the request body is over {most}, the most the service takes")


def _is_json(content_type: str | None) -> bool:
    mime = (content_type or "").split(";")[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


def _dotted(path: list) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "body"


def _bad_numbers(data) -> list[dict]:
    """Errors (FastAPI's shape) for every NaN/Infinity in the decoded body, found without recursion; also the depth."""
    errors: list[dict] = []
    stack = [([], data)]
    while stack and len(errors) < 10:
        path, x = stack.pop()
        if len(path) > MAX_DEPTH:
            return [{"type": "too_deep", "loc": ["body"], "msg": f"body: nested deeper than {MAX_DEPTH} levels",
                     "input": None}]
        if isinstance(x, _NonFinite):
            errors.append({"type": "finite_number", "loc": ["body", *path], "msg": f"{_dotted(path)}: {FINITE}",
                           "input": x.token})
        elif isinstance(x, dict):
            stack.extend((path + [k], v) for k, v in reversed(list(x.items())))
        elif isinstance(x, list):
            stack.extend((path + [i], v) for i, v in reversed(list(enumerate(x))))
    return errors


async def check_body(request: Request) -> None:
    """Size, content type and strict JSON of a write's body, before FastAPI decodes and validates it.

    FastAPI decodes with Python's json, which takes NaN, Infinity and -Infinity (no JSON has them) and turns
    1e999 into inf; such numbers would reach the models (or fail while the 422 echoes them). Here they are a
    422 naming the field. The body read here is cached on the request, so FastAPI does not read it again.
    """
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY:
        raise _too_large(int(length))  # refused without reading it
    try:
        body = await request.body()
    except BodyTooLarge:
        raise _too_large() from None
    if not body:
        return  # FastAPI's own answer: "Field required" where a body is needed, None where it is optional
    ctype = request.headers.get("content-type")
    if not _is_json(ctype):
        raise HTTPException(415, f"send the body as JSON with 'Content-Type: application/json' (got {ctype!r})"
                            if ctype else "send the body as JSON with 'Content-Type: application/json' (none given)")
    try:
        data = json.loads(body, parse_constant=_NonFinite, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "input": {},
                                       "msg": f"JSON decode error: {exc.msg} (line {exc.lineno} column {exc.colno})"}]
                                     ) from None
    except RecursionError:
        raise RequestValidationError([{"type": "too_deep", "loc": ("body",), "input": None,
                                       "msg": f"body: nested deeper than {MAX_DEPTH} levels"}]) from None
    except ValueError as exc:  # not UTF-8, or an integer of more than 4300 digits
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "input": None,
                                       "msg": f"body is not valid JSON: {exc}"}]) from None
    errors = _bad_numbers(data)
    if errors:
        raise RequestValidationError(errors)


class WriteRoute(APIRoute):
    """A route that changes the fleet: the token is checked first, then the body (check_body), then FastAPI's
    own decoding and validation.

    FastAPI reads and decodes the body before it solves any dependency, so with the token only in a
    dependency a malformed body was a 422 before the missing token's 401 (revealing how the body is read).
    The router's ``require_token`` dependency stays for the OpenAPI document (and checks again, harmlessly).
    """

    def get_route_handler(self):
        from presplit.service.auth import check_write

        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            await check_write(request)
            await check_body(request)
            return await handler(request)

        return guarded


# ------------------------------------------------------------------ errors that do not echo much
ECHO = 200  # characters of a rejected input (or of a message) shown back


def short_text(text: str, limit: int = ECHO) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def short_msg(text: str, limit: int = 2 * ECHO) -> str:
    """A message keeps its end too: checks put the expectation last ('... (expected a number)')."""
    if len(text) <= limit + 100:
        return text
    return f"{text[:limit]}... ({len(text)} characters) ...{text[-100:]}"


def _safe(x, depth: int = 0):
    """JSON-able: non-finite floats as strings ('nan', 'inf'), other objects as their str."""
    if isinstance(x, float):
        return x if math.isfinite(x) else str(x)
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if depth > MAX_DEPTH:
        return "..."
    if isinstance(x, dict):
        return {str(k): _safe(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_safe(v, depth + 1) for v in x]
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return str(x)


def short_value(x, limit: int = ECHO):
    """An echoed input: itself when short, else the start of its JSON (or of the string) and its length."""
    x = _safe(x)
    if isinstance(x, str):
        return short_text(x, limit)
    if isinstance(x, int) and not isinstance(x, bool) and x.bit_length() > 3 * limit:
        return f"(an integer of about {int(x.bit_length() * 0.30103) + 1} digits)"  # str() refuses > 4300 digits
    try:
        text = json.dumps(x)
    except ValueError:  # a nested integer of more than 4300 digits
        text = "(too large to show)"
    return x if len(text) <= limit else short_text(text, limit)


def short_error(e: dict) -> dict:
    """One validation error in FastAPI's shape, with the echoed input, message and context capped."""
    out = {"type": e.get("type", "value_error"), "loc": [p if isinstance(p, int) else short_text(str(p), 100)
                                                          for p in e.get("loc", ())],
           "msg": short_msg(str(e.get("msg", "")))}
    if "input" in e:
        out["input"] = short_value(e["input"])
    if e.get("ctx"):
        out["ctx"] = {str(k): short_value(v) for k, v in e["ctx"].items()}
    return out


def short_errors(errors: list, most: int = 20) -> list:
    out = [short_error(e) if isinstance(e, dict) else short_value(e) for e in errors[:most]]
    if len(errors) > most:
        out.append({"type": "too_many_errors", "loc": ["body"], "msg": f"... and {len(errors) - most} more errors"})
    return out


# ------------------------------------------------------------------ responses
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
    from presplit.plan.codec import loads
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
