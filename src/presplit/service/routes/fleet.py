"""Read endpoints of the fleet: hosts, split domains, guests (with their moves), the fabric, windows, charts.

Served from the snapshot the control loop builds after every tick: lists are
pre-encoded bytes, single objects are encoded once per snapshot.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

from presplit.service import schemas as S
from presplit.service.auth import read_access
from presplit.service.routes.common import ERRORS, READ_ERRORS, json_bytes, not_found, runner_of, snapshot

router = APIRouter(prefix="/api", dependencies=[Depends(read_access)], responses=READ_ERRORS)
NO_SNAPSHOT = {503: {"model": S.Error, "description": "No observation yet"}}


@router.get("/status", response_model=S.Status, tags=["fleet"], responses=NO_SNAPSHOT,
            summary="The controller: backend, loop running, simulated time, profile, counts")
async def status(request: Request):
    return json_bytes(snapshot(request).encoded["status"])


@router.get("/fleet", response_model=S.Fleet, tags=["fleet"], responses=NO_SNAPSHOT,
            summary="Status, hosts, live domains and guests in one document (what the dashboard draws)")
async def fleet(request: Request):
    return json_bytes(snapshot(request).encoded["fleet"])


@router.get("/hosts", response_model=list[S.Host], tags=["fleet"], responses=NO_SNAPSHOT,
            summary="Hosts with utilisation, forecast quantiles, domains and the next patch window")
async def hosts(request: Request):
    return json_bytes(snapshot(request).encoded["hosts"])


@router.get("/hosts/{host_id}", response_model=S.Host, tags=["fleet"], responses={**ERRORS, **NO_SNAPSHOT})
async def host(request: Request, host_id: int):
    snap = snapshot(request)
    if not 0 <= host_id < len(snap.hosts):
        raise not_found(f"no host {host_id} (hosts are 0..{len(snap.hosts) - 1})")
    return json_bytes(snap.item(("host", host_id), lambda: snap.hosts[host_id].model_dump_json().encode()))


@router.get("/domains", response_model=list[S.Domain], tags=["fleet"], responses=NO_SNAPSHOT,
            summary="Split domains: allotment, capacity, free room, load, forecast, guests")
async def domains(request: Request, host: int | None = Query(None, description="Only this host's domains."),
                  merged: bool = Query(False, description="Include merged (dissolved) domains.")):
    snap = snapshot(request)
    if host is None and not merged:
        return json_bytes(snap.encoded["domains"])
    items = list(snap.all_domains.values()) if merged else snap.domains
    if host is not None:
        items = [d for d in items if d.host == host]
    return items


@router.get("/domains/{domain_id}", response_model=S.Domain, tags=["fleet"], responses={**ERRORS, **NO_SNAPSHOT})
async def domain(request: Request, domain_id: int):
    snap = snapshot(request)
    d = snap.all_domains.get(domain_id)
    if d is None:
        raise not_found(f"no domain {domain_id}")
    return json_bytes(snap.item(("domain", domain_id), lambda: d.model_dump_json().encode()))


@router.get("/guests", response_model=list[S.Guest], tags=["fleet"], responses=NO_SNAPSHOT,
            summary="Guests: where they run, usage and forecast")
async def guests(request: Request,
                 status: Literal["absent", "pending", "running", "migrating", "down"] | None = None,
                 host: int | None = None, domain: int | None = None,
                 limit: int | None = Query(None, ge=1, le=100_000), offset: int = Query(0, ge=0, le=10_000_000)):
    snap = snapshot(request)
    if status is None and host is None and domain is None and limit is None and offset == 0:
        return json_bytes(snap.encoded["guests"])
    items = [g for g in snap.guests if (status is None or g.status == status) and (host is None or g.host == host)
             and (domain is None or g.domain == domain)]
    return items[offset:offset + limit if limit is not None else None]


@router.get("/guests/{guest_id}", response_model=S.GuestDetail, tags=["fleet"], responses={**ERRORS, **NO_SNAPSHOT},
            summary="One guest, with its history of placements, re-pins and migrations and their reasons")
async def guest(request: Request, guest_id: str):
    snap = snapshot(request)
    i = snap.guest_ids.get(guest_id)
    if i is None:
        raise not_found(f"no guest {guest_id!r}")
    moves = runner_of(request).moves_of(i)
    return S.GuestDetail(**snap.guests[i].model_dump(), moves=moves)


@router.get("/fabric", response_model=S.Fabric, tags=["fleet"], responses=NO_SNAPSHOT,
            summary="The fabric as a graph: hosts and switches, links with live migrations in flight")
async def fabric(request: Request):
    return json_bytes(snapshot(request).encoded["fabric"])


@router.get("/windows", response_model=list[S.Window], tags=["fleet"], responses=NO_SNAPSHOT,
            summary="Maintenance (patch) windows of the fleet")
async def windows(request: Request, past: bool = Query(False, description="Include windows that ended.")):
    snap = snapshot(request)
    if past:
        return json_bytes(snap.encoded["windows"])
    return [w for w in snap.windows if w.state != "past"]


def _series(request: Request, kind: str, key) -> S.Series:
    runner = runner_of(request)
    interval = runner.loop.interval if runner.loop is not None else 0.0
    return runner.history.series(kind, key, float(interval))


@router.get("/hosts/{host_id}/forecast", response_model=S.Series, tags=["forecast"],
            responses={**ERRORS, **NO_SNAPSHOT}, summary="A host's load, capacity and forecast interval per tick")
async def host_forecast(request: Request, host_id: int):
    snap = snapshot(request)
    if not 0 <= host_id < len(snap.hosts):
        raise not_found(f"no host {host_id}")
    return _series(request, "host", host_id)


@router.get("/domains/{domain_id}/forecast", response_model=S.Series, tags=["forecast"],
            responses={**ERRORS, **NO_SNAPSHOT}, summary="A domain's load, capacity and forecast interval per tick")
async def domain_forecast(request: Request, domain_id: int):
    if domain_id not in snapshot(request).all_domains:
        raise not_found(f"no domain {domain_id}")
    return _series(request, "domain", domain_id)


@router.get("/guests/{guest_id}/forecast", response_model=S.Series, tags=["forecast"],
            responses={**ERRORS, **NO_SNAPSHOT}, summary="A guest's demand, size and forecast interval per tick")
async def guest_forecast(request: Request, guest_id: str):
    i = snapshot(request).guest_ids.get(guest_id)
    if i is None:
        raise not_found(f"no guest {guest_id!r}")
    s = _series(request, "guest", i)
    return s.model_copy(update={"id": guest_id})


@router.get("/history", response_model=S.FleetHistory, tags=["forecast"], responses=NO_SNAPSHOT,
            summary="The fleet per tick: CPU and memory use, hosts on, power, migrations, unserved demand")
async def history(request: Request, limit: int = Query(288, ge=1, le=100_000,
                                                       description="The newest this many ticks.")):
    snap = snapshot(request)
    runner = runner_of(request)
    interval = float(runner.loop.interval) if runner.loop is not None else 0.0
    feed = runner.observed_feed
    lead = float(feed.params.lead_steps) if feed is not None else 1.0
    return S.FleetHistory(start_epoch_s=snap.status.start_epoch_s, interval_s=interval,
                          forecast_horizon_s=lead * interval if interval > 0 else None,
                          points=runner.fleet_history.recent(limit))
