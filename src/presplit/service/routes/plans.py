"""Read endpoints of the journal: plans, their actions with status and reasons, events, the timeline."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query, Request

from presplit.service import schemas as S
from presplit.service.auth import read_access
from presplit.service.routes.common import ERRORS, READ_ERRORS, action_model, not_found, plan_model, plan_row, runner_of

router = APIRouter(prefix="/api", dependencies=[Depends(read_access)], responses=READ_ERRORS, tags=["plans"])
PLAN_STATUSES = ("running", "succeeded", "partially_failed", "failed", "cancelled", "recommended", "rejected")


def _journal(request: Request):
    return runner_of(request).reader


@router.get("/plans", response_model=list[S.Plan], summary="Plans, newest first, with action counts per status")
def plans(request: Request, status: str | None = Query(None, description="One of " + ", ".join(PLAN_STATUSES)),
          limit: int = Query(50, ge=1, le=1000), before: int | None = Query(None, ge=0, le=2**62,
                                                                            description="Only plans with a smaller id.")):
    from presplit.plan.codec import loads
    from presplit.apply.journal import actions, plans as plans_t

    j = _journal(request)
    q = sa.select(plans_t).order_by(plans_t.c.id.desc()).limit(limit)
    if status is not None:
        q = q.where(plans_t.c.status == status)
    if before is not None:
        q = q.where(plans_t.c.id < before)
    with j.engine.connect() as conn:
        rows = conn.execute(q).mappings().all()
        ids = [r["id"] for r in rows]
        counts = conn.execute(sa.select(actions.c.plan_id, actions.c.status, sa.func.count())
                              .where(actions.c.plan_id.in_(ids)).group_by(actions.c.plan_id, actions.c.status)).all() \
            if ids else []
    per: dict = {}
    for pid, st, n in counts:
        per.setdefault(pid, {})[st] = n
    return [plan_model({**dict(r), "summary": loads(r["summary"]), "limits": loads(r["limits"]),
                        "actions": per.get(r["id"], {})}) for r in rows]


@router.get("/plans/{plan_id}", response_model=S.PlanDetail, responses=ERRORS,
            summary="A plan and its actions: kind, arguments, reason and numbers, status, error")
def plan(request: Request, plan_id: int):
    j = _journal(request)
    row = plan_row(j, plan_id) if -2**62 < plan_id < 2**62 else None
    if row is None:
        raise not_found(f"no plan {plan_id}")
    return S.PlanDetail(**plan_model(row).model_dump(), action_list=[action_model(r) for r in j.actions_of(plan_id)])


@router.get("/plans/{plan_id}/actions", response_model=list[S.Action], responses=ERRORS)
def plan_actions(request: Request, plan_id: int):
    j = _journal(request)
    if not -2**62 < plan_id < 2**62 or plan_row(j, plan_id) is None:
        raise not_found(f"no plan {plan_id}")
    return [action_model(r) for r in j.actions_of(plan_id)]


def _events(request: Request, plan_id: int | None, after: int | None, limit: int) -> list[S.Event]:
    from presplit.apply.journal import events

    q = sa.select(events)
    if plan_id is not None:
        q = q.where(events.c.plan_id == plan_id)
    if after is not None:
        q = q.where(events.c.id > after).order_by(events.c.id).limit(limit)
    else:
        q = q.order_by(events.c.id.desc()).limit(limit)
    with _journal(request).engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(q).mappings()]
    rows.sort(key=lambda r: r["id"])
    return [S.Event(**r) for r in rows]


@router.get("/plans/{plan_id}/events", response_model=list[S.Event], responses=ERRORS)
def plan_events(request: Request, plan_id: int, limit: int = Query(1000, ge=1, le=10000)):
    if not -2**62 < plan_id < 2**62 or plan_row(_journal(request), plan_id) is None:
        raise not_found(f"no plan {plan_id}")
    return _events(request, plan_id, None, limit)


@router.get("/events", response_model=list[S.Event],
            summary="The journal's events (intent, started, finished, failed, reverted, ...), oldest first")
def all_events(request: Request, plan_id: int | None = Query(None, ge=0, le=2**62),
               after: int | None = Query(None, ge=0, le=2**62, description="Only events with a larger id."),
               limit: int = Query(200, ge=1, le=10000)):
    return _events(request, plan_id, after, limit)


@router.get("/timeline", response_model=list[S.TimelineEntry],
            summary="Recent actions, newest first: who moved where and why (what the dashboard's timeline shows)")
async def timeline(request: Request, limit: int = Query(100, ge=1, le=1000),
                   kind: list[str] | None = Query(None, description="Only these action kinds, e.g. MigrateGuest.")):
    return runner_of(request).recent_timeline(limit, set(kind) if kind else None)
