"""Mutations: launch a guest, add a maintenance window, change the profile, approve/reject/cancel a plan.

Every route here needs the bearer token (checked before the body is read, by
``WriteRoute``: 401 and nothing changes; then the body's size, content type
and numbers: 413, 415, 422). The change itself runs on the control loop's
thread between two ticks; the response comes when it is done -- except an approval (dry run): it is
recorded at once (202) and the loop applies the plan between two ticks; poll ``GET /api/plans/{id}``.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Body, Depends, HTTPException, Request

from presplit.service import ops
from presplit.service import schemas as S
from presplit.service.auth import read_access, require_token
from presplit.service.routes.common import (ERRORS, WRITE_ERRORS, WriteRoute, as_http, json_bytes, plan_model,
                                           plan_row, runner_of, wait)
from presplit.service.errors import ServiceError

router = APIRouter(prefix="/api", tags=["control"])
# WriteRoute checks the token before the body is read, then the body's size and its numbers (finite only).
writes = APIRouter(prefix="/api", tags=["control"], dependencies=[Depends(require_token)], responses=WRITE_ERRORS,
                   route_class=WriteRoute)


@writes.post("/guests", response_model=S.Guest, status_code=202,
             summary="Launch a guest: it arrives pending and the policy places it at the next tick")
async def launch_guest(request: Request, body: S.LaunchGuest):
    runner = runner_of(request)
    index = await wait(runner.submit(lambda: ops.launch_guest(runner, body)))
    snap = runner.snapshot
    return json_bytes(snap.guests[index].model_dump_json().encode(), 202)


@writes.post("/windows", response_model=S.Window, status_code=201, summary="Add a maintenance (patch) window")
async def add_window(request: Request, body: S.AddWindow):
    runner = runner_of(request)
    return await wait(runner.submit(lambda: ops.add_window(runner, body)))


@router.get("/profile", response_model=S.Profile, dependencies=[Depends(read_access)],
            responses={401: {"model": S.Error, "description": "A token is needed for reads from this address"},
                       503: {"model": S.Error, "description": "The control loop is not running"}},
            summary="The running profile: policies with their arguments, caps, tick")
async def get_profile(request: Request):
    runner = runner_of(request)
    if runner.profile is None or runner.loop is None:
        raise HTTPException(503, "the control loop is not running")
    return ops.profile_view(runner.profile, runner.loop.interval)


@writes.put("/profile", response_model=S.Profile,
            summary="Switch the profile between two ticks (validated first: a bad profile changes nothing)")
async def put_profile(request: Request, body: S.ProfileIn):
    import dataclasses

    from presplit.control.profile import PolicySpec, ProfileError, build_policies, parse_profile
    from presplit.policies.registry import entry_points, is_builtin
    from presplit.service.routes.common import invalid

    runner = runner_of(request)
    data = body.model_dump(exclude_none=True)
    if data.get("forecaster") is not None:
        from presplit.errors import InputError
        from presplit.forecast.decision import check_for_controller

        try:
            check_for_controller(data["forecaster"], "forecaster")
        except InputError as exc:
            raise invalid(("body", "forecaster"), str(exc)) from None

    installed = entry_points()
    for i, spec in enumerate(data["policies"]):
        # A request must not make the server import code: a plugin named by file or module runs only from a
        # profile file the operator starts the service with, or as an installed `presplit.policies` entry point.
        name = spec["name"].strip()
        plugin_spec = ":" in name or name.endswith(".py") or "/" in name or "\\" in name
        if plugin_spec and not (is_builtin(name) or name in installed):
            raise invalid(("body", "policies", i, "name"),
                          f"{spec['name']!r}: a policy named by file or module is not accepted over the API "
                          "(it would run code from the request); install it as a presplit.policies entry point, "
                          "or start presplit serve with --profile naming it")
    try:
        # parse_profile checks arguments against a policy's first engine (the CloudSim one for
        # presplit), so arguments are checked here against this world's kind instead.
        base = parse_profile({**data, "policies": [{"name": p["name"]} for p in data["policies"]]}, "request body")
        profile = dataclasses.replace(base, policies=tuple(PolicySpec(p["name"], dict(p.get("args") or {}))
                                                           for p in data["policies"]))
        build_policies(profile, runner.kind)
    except ProfileError as exc:
        loc = ("body", *[int(p) if p.isdigit() else p for p in
                         exc.key.replace("[", ".").replace("]", "").split(".") if p]) if exc.key else ("body",)
        raise invalid(loc, str(exc)) from None
    return await wait(runner.submit(lambda: ops.set_profile(runner, profile)))


async def _plan_after(request: Request, plan_id: int) -> S.Plan:
    row = await asyncio.to_thread(plan_row, runner_of(request).reader, plan_id)
    if row is None:
        raise HTTPException(404, f"no plan {plan_id}")
    return plan_model(row)


def _check_id(plan_id: int) -> None:
    if not -2**62 < plan_id < 2**62:
        raise HTTPException(404, f"no plan {plan_id}")


@writes.post("/plans/{plan_id}/approve", response_model=S.Plan, status_code=202, responses=ERRORS,
             summary="Approve a recommended plan (dry-run mode): 202 at once, the loop applies it between two ticks "
                     "(poll GET /api/plans/{id}); 409 when it is superseded, not recommended, or too old")
async def approve(request: Request, plan_id: int, body: S.Decision | None = Body(None)):
    _check_id(plan_id)
    runner = runner_of(request)
    note = body.note if body else None
    try:
        await asyncio.to_thread(ops.approve, runner, plan_id, note)  # records the decision only; no tick waited for
    except ServiceError as exc:
        raise as_http(exc) from None
    except Exception as exc:  # a bug: journaled as the commands' are, then a 500
        await asyncio.to_thread(_command_failed, runner, exc)
        raise
    return await _plan_after(request, plan_id)


def _command_failed(runner, exc: BaseException) -> None:
    import traceback

    try:
        runner.reader.record_event("command_failed", detail="".join(traceback.format_exception(exc)))
    except Exception:  # noqa: BLE001 - the journal failing too: the 500 still goes out
        pass


@writes.post("/plans/{plan_id}/reject", response_model=S.Plan, responses=ERRORS,
             summary="Reject a recommended plan: its actions are cancelled, nothing runs")
async def reject(request: Request, plan_id: int, body: S.Decision | None = Body(None)):
    _check_id(plan_id)
    runner = runner_of(request)
    note = body.note if body else None
    await wait(runner.submit(lambda: ops.close_recommended(runner, plan_id, note, status="rejected")))
    return await _plan_after(request, plan_id)


@writes.post("/plans/{plan_id}/cancel", response_model=S.Plan, responses=ERRORS,
             summary="Cancel a plan: the running action finishes, the rest are cancelled")
async def cancel(request: Request, plan_id: int, body: S.Decision | None = Body(None)):
    _check_id(plan_id)
    runner = runner_of(request)
    note = body.note if body else None
    loop = runner.loop
    if runner.withdraw_approved(plan_id):  # approved, still waiting for the loop: it never starts
        await wait(runner.submit(lambda: ops.cancel_idle(runner, plan_id, note, withdrawn=True)))
        return await _plan_after(request, plan_id)
    if loop is not None and loop.applier.cancel_plan(plan_id):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            plan = await _plan_after(request, plan_id)
            if plan.status != "running":
                return plan
            await asyncio.sleep(0.05)
        raise HTTPException(503, f"plan {plan_id} is still finishing its running actions")
    await wait(runner.submit(lambda: ops.cancel_idle(runner, plan_id, note)))
    return await _plan_after(request, plan_id)
