"""The FastAPI application: the API, ``/metrics``, live events and the dashboard, around one Runner.

:func:`create_app` wires a :class:`~presplit.service.runner.Runner` (the
control loop's thread), an :class:`~presplit.service.auth.Auth`, the metrics
registry and the live hub; the app's lifespan starts the runner and stops it
(SIGTERM: the running action finishes, the rest of the plan is cancelled).
The OpenAPI document is at ``/openapi.json`` (``/docs`` renders it, if the
browser can reach its CDN; the API does not need it).
"""

from __future__ import annotations

import contextlib
from importlib.resources import files

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from presplit import __version__
from presplit.service.auth import Auth, read_access
from presplit.service.live import LiveHub
from presplit.service.metrics import Metrics
from presplit.service.runner import Runner, ServiceConfig, ServiceError

STATIC = files("presplit.service") / "static"

DESCRIPTION = """presplit's controller as a service: the fleet (hosts, split domains, guests, the fabric),
forecasts, plans and their actions with reasons, journal events; and the operator's mutations (launch a guest,
add a maintenance window, change the profile, approve/reject/cancel a plan), which need a bearer token.
Simulated times are seconds since the world's start; CPU in MIPS, memory in MB."""


def create_app(cfg: ServiceConfig | None = None, *, auth: Auth | None = None, runner: Runner | None = None,
               manage_runner: bool = True) -> FastAPI:
    from presplit.service.routes import control, fleet, plans

    hub = LiveHub()
    runner = runner or Runner(cfg, hub=hub)
    metrics = runner.metrics or Metrics(lambda: runner.snapshot)
    runner.metrics = metrics
    runner.hub = runner.hub or hub
    hub = runner.hub

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_runner:
            import asyncio

            await asyncio.to_thread(runner.start)
        try:
            yield
        finally:
            hub.close()
            if manage_runner:
                import asyncio

                await asyncio.to_thread(runner.stop)

    app = FastAPI(title="presplit", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  openapi_tags=[{"name": "fleet", "description": "Hosts, split domains, guests, fabric, windows"},
                                {"name": "forecast", "description": "Load and forecast intervals per tick"},
                                {"name": "plans", "description": "The journal: plans, actions, events"},
                                {"name": "control", "description": "Mutations (bearer token)"}])
    app.state.runner, app.state.auth, app.state.hub, app.state.metrics = runner, auth or Auth(None), hub, metrics
    app.include_router(fleet.router)
    app.include_router(plans.router)
    app.include_router(control.router)
    app.include_router(control.writes)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(read_access)])
    def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/live", include_in_schema=False, dependencies=[Depends(read_access)])
    async def live(request: Request):
        return StreamingResponse(hub.stream(request.is_disconnected), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard/", include_in_schema=False)
    async def dashboard():
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/dashboard", StaticFiles(directory=str(STATIC)), name="dashboard")
    return app
