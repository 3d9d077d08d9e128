"""Prometheus metrics of one app: requests by route and status, latency, auth failures.

Each app has its own registry, so several apps in one process (tests) do not mix their
counts. The middleware is plain ASGI: it adds no work beyond two clock reads and a label
lookup per request.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Bounds of the latency histogram (seconds)."""


class ServiceMetrics:
    """The metrics of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("traderseg_http_requests", "HTTP requests served.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("traderseg_http_request_duration_seconds",
                                 "Time to the end of the response.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.control_changes = Counter("traderseg_control_changes",
                                       "Control changes recorded by manual overrides.",
                                       registry=self.registry)


class MetricsMiddleware:
    """Count and time every HTTP request by the name of the route that served it."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:  # noqa: D102
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            route = getattr(scope.get("route"), "name", None) or "unmatched"
            self.metrics.requests.labels(route, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
