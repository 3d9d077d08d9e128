"""The app factory: :func:`create_app` builds the FastAPI app over the service's state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from traderseg import __version__
from traderseg.errors import TradersegError
from traderseg.service import api, dashboard
from traderseg.service.metrics import MetricsMiddleware, ServiceMetrics
from traderseg.service.schemas import Health, Readiness
from traderseg.service.settings import ServiceSettings
from traderseg.service.state import ServiceState, open_state


def one_line(exc: BaseException | str) -> str:
    """Return the message of ``exc`` on one line."""
    return " ".join(str(exc).split())


def route_table(app: FastAPI) -> list[tuple[str, str, str, Any]]:
    """Return ``(name, method, path, route)`` for every route ``app`` serves.

    Routes of included routers are listed one by one with their full path (the access
    rules and their test walk this table).
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before route contexts: the routes are flat already
        contexts: Any = app.routes
    else:
        contexts = iter_route_contexts(app.routes)
    out: list[tuple[str, str, str, Any]] = []
    for ctx in contexts:
        route = getattr(ctx, "original_route", ctx)
        methods = set(getattr(ctx, "methods", None) or {"GET"}) - {"HEAD", "OPTIONS"}
        out.extend((str(ctx.name), m, str(ctx.path), route) for m in sorted(methods))
    return out


def create_app(settings: ServiceSettings, state: ServiceState | None = None) -> FastAPI:
    """Build the service: the ``/v1`` API, the dashboard under ``/ui``, health and metrics.

    The lifespan opens every venue's store, loads its model and builds its account book;
    they are closed when the app stops.

    Parameters
    ----------
    settings : ServiceSettings
        Venues (store and model each), key file, cookie and upload settings.
    state : ServiceState, optional
        Venues opened already (:func:`open_state`; ``traderseg serve`` opens them before
        the server starts, so a bad store or model is one line, not a failed startup); the
        app closes them when it stops.

    Returns
    -------
    fastapi.FastAPI
        The app (run it with uvicorn, or call it in process with ``TestClient``).
    """
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = state if state is not None else open_state(settings)
        app.state.service = opened
        try:
            yield
        finally:
            opened.close()

    app = FastAPI(title="traderseg", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Trader segments, risk profiles, controls and audiences of a "
                  "venue. Every route needs an API key (`Authorization: Bearer tsk_...`) "
                  "except health, readiness and metrics.")
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(TradersegError)
    async def domain_error(request: Request, exc: TradersegError) -> JSONResponse:
        return JSONResponse({"detail": one_line(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = f"{where}: {first.get('msg', 'invalid')}" if where else "invalid request"
        return JSONResponse({"detail": one_line(detail)}, status_code=422)

    @app.get("/healthz", name="health", response_model=Health, tags=["service"])
    def health() -> Health:
        """Liveness: the process answers."""
        return Health()

    @app.get("/readyz", name="ready", response_model=Readiness, tags=["service"],
             responses={503: {"model": Readiness, "description": "Not ready yet."}})
    def ready(request: Request) -> Response:
        """Readiness: every venue's store is open and its account book built."""
        state: ServiceState | None = getattr(request.app.state, "service", None)
        body = Readiness(ready=bool(state and state.ready),
                         venues=len(state.venues) if state else 0)
        return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)

    @app.get("/metrics", name="metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
                              "description": "Prometheus text format."}})
    def prometheus() -> Response:
        """Prometheus metrics of the app."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api.router, tags=["api"])
    app.include_router(dashboard.router)
    dashboard.install(app, settings.session_minutes)
    return app
