"""The request guard on aiohttp: one middleware, and the one check a handler makes.

:func:`guard_middleware` guards every operation, and every request that
matches none, by :mod:`app.api.access`: public ones pass; for the others it
identifies the caller (401, 403 for a wrong service token, 429 for an
address over its limit, 503 while the key set cannot be fetched), authorizes
the path's ``{user_id}`` or a service endpoint (403), stores the caller on
the request, and counts the answer against the client's address.
``POST /tokens`` names its user in the body, so its handler calls
:func:`authorize_registration` once the body is parsed.
Refusals are the API's JSON errors, ``{"error": ..., "code": ...}``.
:func:`serve_with` ties the guard's life to the web server's.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

from app.api.access import Access, access_of, access_of_unmatched
from app.api.callers import Caller
from app.api.guard import RequestGuard
from app.api.refusals import Refusal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

#: The identified caller of a request that passed the middleware.
CALLER = web.RequestKey("pushes_caller", Caller)
_GUARD = web.RequestKey("pushes_guard", RequestGuard)

_compact_json = partial(json.dumps, separators=(",", ":"))


def refusal_response(refusal: Refusal) -> web.Response:
    """The JSON answer to a refusal, with its ``WWW-Authenticate``/``Retry-After``."""
    return web.json_response(
        refusal.body(), status=refusal.status, headers=refusal.headers(), dumps=_compact_json
    )


def guard_middleware(guard: RequestGuard) -> Middleware:
    """The middleware that guards every request with ``guard`` (see the module doc)."""

    @web.middleware
    async def guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        access = _access(request)
        if access is Access.PUBLIC:
            return await handler(request)
        address = guard.address(request.remote, request.headers.get("X-Forwarded-For"))
        status = 500
        try:
            response = await _answer(guard, access, request, handler, address)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            guard.record(address, status)

    return guarded


def _access(request: web.Request) -> Access:
    match = request.match_info
    if match.http_exception is not None:  # no route: aiohttp's 404 or 405
        return access_of_unmatched(match.http_exception.status)
    resource = match.route.resource
    return access_of(resource.canonical, request.method) if resource else Access.SERVICE


async def _answer(
    guard: RequestGuard, access: Access, request: web.Request, handler: Handler, address: str
) -> web.StreamResponse:
    caller = await guard.identify(request.headers.get("Authorization"), address)
    if not isinstance(caller, Refusal):
        if access is Access.USER_IN_PATH:
            caller = guard.authorize(caller, request.match_info.get("user_id"))
        elif access is Access.SERVICE:
            caller = guard.authorize(caller, None)
    if isinstance(caller, Refusal):
        return refusal_response(caller)
    request[CALLER] = caller
    request[_GUARD] = guard
    return await handler(request)


def serve_with(web_app: web.Application, guard: RequestGuard) -> None:
    """Start ``guard`` when ``web_app`` starts serving, and close it once the server stopped.

    Set before the server starts: aiohttp freezes the hooks then.
    """

    async def start(_: web.Application) -> None:
        guard.start()

    async def close(_: web.Application) -> None:
        await guard.close()

    web_app.on_startup.append(start)
    web_app.on_cleanup.append(close)


def authorize_registration(request: web.Request, user_id: str) -> Refusal | None:
    """For ``POST /tokens`` once its body is parsed: 403 for another user, 429 over the limit."""
    outcome = request[_GUARD].authorize(request[CALLER], user_id, registration=True)
    return outcome if isinstance(outcome, Refusal) else None
