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
import logging
import time
from importlib.resources import files
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from presplit import __version__
from presplit.service.auth import Auth, read_access
from presplit.service.errors import ServiceError
from presplit.service.live import LiveHub
from presplit.service.metrics import Metrics
from presplit.service.routes.common import MAX_BODY, short_errors, short_msg, short_text
from presplit.service.runner import Runner, ServiceConfig

STATIC = files("presplit.service") / "static"

DESCRIPTION = """presplit's controller as a service: the fleet (hosts, split domains, guests, the fabric),
forecasts, plans and their actions with reasons, journal events; and the operator's mutations (launch a guest,
add a maintenance window, change the profile, approve/reject/cancel a plan), which need a bearer token.
Simulated times are seconds since the world's start; CPU in MIPS, memory in MB."""


ACCESS_LOG = logging.getLogger("presplit.access")


class BodyLimit:
    """ASGI middleware: a request body stops being read past ``limit`` bytes (BodyTooLarge, a 413 for the writes).

    Counting in ``receive`` also covers chunked bodies, which have no Content-Length to check up front.
    """

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from presplit.service.routes.common import BodyTooLarge

        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


class AccessLog:
    """ASGI middleware: one line per request on ``presplit.access``: client, method, path, status, duration.

    The path is logged percent-encoded (no raw newlines from %0A) and without the query string; headers and
    bodies are never logged. A streamed response (SSE) is logged when it ends.
    """

    def __init__(self, app, logger: logging.Logger = ACCESS_LOG) -> None:
        self.app, self.logger = app, logger

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = None

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            client = scope.get("client")
            path = quote(scope.get("path", ""), safe="/:@!$&'()*+,;=-._~")
            self.logger.info('%s "%s %s" %s %.1f ms', f"{client[0]}:{client[1]}" if client else "-",
                             scope.get("method", "-"), short_text(path, 300), status or 500,
                             (time.perf_counter() - t0) * 1000)


def create_app(cfg: ServiceConfig | None = None, *, auth: Auth | None = None, runner: Runner | None = None,
               manage_runner: bool = True, access_log: bool = False) -> FastAPI:
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

    # Errors never echo much: a rejected input, a message or a location is cut to a few hundred characters
    # (FastAPI's default 422 echoes the whole input -- a 4 MB string, or a NaN it then fails to encode: a 500).
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": short_errors(list(exc.errors()))}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException):
        detail = exc.detail
        detail = short_errors(detail) if isinstance(detail, list) else short_msg(str(detail), 1000)
        headers = getattr(exc, "headers", None)
        if exc.status_code < 200 or exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=headers)
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError):
        return JSONResponse({"detail": short_msg(exc.message, 1000)}, status_code=exc.status)

    app.add_middleware(BodyLimit, limit=MAX_BODY)
    if access_log:
        app.add_middleware(AccessLog)  # added last: outermost, so it times and sees every response

    @app.get("/metrics", include_in_schema=False, dependencies=[Depends(read_access)])
    def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/live", include_in_schema=False, dependencies=[Depends(read_access)])
    async def live(request: Request):
        return StreamingResponse(hub.stream(request.is_disconnected), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # HEAD too (uptime checks, curl -I): GET-only routes would answer HEAD with 404/405
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def root():
        return RedirectResponse("/dashboard/")

    @app.api_route("/dashboard/", methods=["GET", "HEAD"], include_in_schema=False)
    async def dashboard():
        return FileResponse(str(STATIC / "index.html"), headers={"Cache-Control": "no-cache"})

    app.mount("/dashboard", StaticFiles(directory=str(STATIC)), name="dashboard")
    return app
