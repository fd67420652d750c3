"""What every HTTP request goes through: metrics, JSON errors, the request guard.

aiohttp answers unknown paths (404), wrong methods (405) and oversized bodies
(413) with text/plain pages, and an unexpected exception with a text 500.
:func:`json_errors` turns all of them into the API's ``{"error": ...}`` shape;
error texts never echo the request, so no token can come back in one.
Who may call what, and the abuse limits, are :mod:`app.api.guard_http`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web as aiohttp_web

from app.api.guard import RequestGuard
from app.api.guard_http import guard_middleware
from app.ops.metrics import UNMATCHED_ROUTE, http_latency, http_requests, method_label

log = logging.getLogger(__name__)

Handler = Callable[[aiohttp_web.Request], Awaitable[aiohttp_web.StreamResponse]]
Middleware = Callable[[aiohttp_web.Request, Handler], Awaitable[aiohttp_web.StreamResponse]]


def json_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> aiohttp_web.Response:
    """The API's error answer."""
    return aiohttp_web.json_response(
        {"error": message}, status=status, headers=headers, dumps=_compact_json
    )


# The same compact JSON as Faust's own responses.
_compact_json = partial(json.dumps, separators=(",", ":"))


def error_message(status: int, method: str, allowed: frozenset[str] | None = None) -> str:
    """A clear sentence for an HTTP error that aiohttp raised itself."""
    if status == 404:
        return "no such endpoint; the API is described at /openapi.json"
    if status == 405:
        methods = ", ".join(sorted(allowed or ()))
        return f"method {method_label(method)} is not allowed here; allowed: {methods}"
    if status == 413:
        return "the request body is too large"
    return aiohttp_web.Response(status=status).reason or f"HTTP {status}"


def route_label(request: aiohttp_web.Request) -> str:
    """The matched route's pattern, e.g. ``/tokens/{user_id}``, never the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@aiohttp_web.middleware
async def measure(request: aiohttp_web.Request, handler: Handler) -> aiohttp_web.StreamResponse:
    """Count every request by route and status, and time it."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        route, method = route_label(request), method_label(request.method)
        http_requests.labels(route, method, str(status)).inc()
        http_latency.labels(route, method).observe(time.perf_counter() - started)


@aiohttp_web.middleware
async def json_errors(request: aiohttp_web.Request, handler: Handler) -> aiohttp_web.StreamResponse:
    """Answer every error as JSON, and an unexpected exception as a logged 500."""
    try:
        response = await handler(request)
    except aiohttp_web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        allowed = getattr(exc, "allowed_methods", None)
        return json_error(exc.status, error_message(exc.status, request.method, allowed), headers)
    except (asyncio.CancelledError, KeyboardInterrupt):
        raise
    except Exception as exc:
        # Type and frames only: an exception's text may quote request data.
        log.error(
            "unexpected %s answering %s %s:\n%s",
            type(exc).__name__,
            method_label(request.method),
            route_label(request),
            "".join(traceback.format_tb(exc.__traceback__)),
        )
        return json_error(500, "internal error; it has been logged")
    if response.status >= 400 and response.content_type != "application/json":
        return json_error(response.status, error_message(response.status, request.method))
    return response


def middlewares(guard: RequestGuard) -> list[Middleware]:
    """Every middleware of the API, outermost first: the guard's refusals are measured too."""
    return [measure, json_errors, guard_middleware(guard)]
