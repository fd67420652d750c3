"""Which caller may reach which operation: one table for the guard and the OpenAPI document."""

from __future__ import annotations

import enum


class Access(enum.Enum):
    """How an operation is guarded."""

    #: No credentials (health checks: orchestrators probe them without secrets).
    PUBLIC = "public"
    #: Any identified caller, a user JWT too.
    ANY_CALLER = "any caller"
    #: A user JWT for the path's ``{user_id}``, or the service token.
    USER_IN_PATH = "user in path"
    #: A user JWT for the body's ``user_id`` (checked by the handler), or the service token.
    USER_IN_BODY = "user in body"
    #: The service token only (``/stats``, ``/metrics``, anything not listed).
    SERVICE = "service"


#: Operations by (route pattern, lower-case method); any other one is SERVICE.
OPERATIONS: dict[tuple[str, str], Access] = {
    ("/healthz", "get"): Access.PUBLIC,
    ("/readyz", "get"): Access.PUBLIC,
    ("/openapi.json", "get"): Access.ANY_CALLER,
    ("/tokens", "post"): Access.USER_IN_BODY,
    ("/tokens/{user_id}", "get"): Access.USER_IN_PATH,
    ("/tokens/{user_id}/{device_id}", "delete"): Access.USER_IN_PATH,
}


def access_of(route: str, method: str) -> Access:
    """How the operation ``method route`` is guarded (SERVICE unless listed)."""
    return OPERATIONS.get((route, method.lower()), Access.SERVICE)


def access_of_unmatched(status: int) -> Access:
    """How a request that matched no route is guarded, by the status aiohttp will answer.

    A wrong method on a served path (405) is answered to anyone: no handler
    runs, and its ``Allow`` header repeats what the API's description says,
    while a public path must answer it without credentials.  An unknown path
    (404) needs an identified caller, a user JWT too, so probing paths tells a
    stranger nothing but 401, and a user gets 404 rather than a 403 about
    service endpoints.
    """
    return Access.PUBLIC if status == 405 else Access.ANY_CALLER
