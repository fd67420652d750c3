"""The OpenAPI description of who may call what: security schemes and their answers.

Pure, from the settings, like :func:`app.api.openapi.build_openapi`, whose
document :func:`apply_security` completes (``build_openapi`` calls it, so the
served document always has it):

- ``components.securitySchemes``: ``serviceToken`` (HTTP bearer, the
  ``PUSHES_API_TOKEN``) and, with user-JWT keys configured, ``userJwt`` (HTTP
  bearer, ``bearerFormat: JWT``);
- per operation, ``security`` (the token endpoints and ``/openapi.json``
  accept either scheme; the other endpoints only the service token; the
  health checks none) and the 401, 403, 429 (and, with a JWKS, 503) answers
  the guard can give, each naming the ``code`` values it carries.

An open API (neither configured) declares no security and no 401/403/429,
except the admin header's 403 on ``GET /tokens/{user_id}``.
"""

from __future__ import annotations

import copy
from typing import Any

from app.api import refusals as r
from app.api.access import OPERATIONS, Access
from app.api.auth import ADMIN_HEADER
from app.config import Settings

Schema = dict[str, Any]

SERVICE_SCHEME = "serviceToken"
USER_SCHEME = "userJwt"
#: Operations a user JWT may call, for its own user only.
USER_OPERATIONS = frozenset(
    op for op, access in OPERATIONS.items() if access in (Access.USER_IN_PATH, Access.USER_IN_BODY)
)
#: Operations any identified caller may call.
ANY_CALLER_OPERATIONS = frozenset(
    op for op, access in OPERATIONS.items() if access is Access.ANY_CALLER
)
#: Operations nobody needs credentials for.
PUBLIC_OPERATIONS = frozenset(op for op, access in OPERATIONS.items() if access is Access.PUBLIC)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_CODES_401 = (
    r.MISSING_CREDENTIALS,
    r.NOT_BEARER,
    r.MALFORMED_TOKEN,
    r.ALG_NONE,
    r.ALG_NOT_ALLOWED,
    r.MISSING_KID,
    r.UNKNOWN_KID,
    r.BAD_SIGNATURE,
    r.EXPIRED,
    r.NOT_YET_VALID,
    r.WRONG_ISSUER,
    r.WRONG_AUDIENCE,
    r.MISSING_CLAIM,
    r.INVALID_CLAIM,
    r.USER_CLAIM_MISSING,
    r.USER_CLAIM_INVALID,
)


def security_schemes(settings: Settings) -> Schema:
    """``components.securitySchemes`` for ``settings`` (empty for an open API)."""
    if not _secured(settings):
        return {}
    service = "The service token (PUSHES_API_TOKEN) of a trusted backend; acts for any user."
    if settings.api_token is None:
        service += " Not configured here: the endpoints that need it refuse every caller."
    schemes: Schema = {SERVICE_SCHEME: {"type": "http", "scheme": "bearer", "description": service}}
    if settings.user_jwt_enabled:
        source = "a JWKS" if settings.user_jwks_url else "a configured public key"
        schemes[USER_SCHEME] = {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                f"A user's JWT, RS256 or ES256, verified against {source}; iss must be "
                f"{settings.user_jwt_issuer!r}, aud must include {settings.user_jwt_audience!r}, "
                f"exp is required (leeway {settings.user_jwt_leeway_seconds} s). Its "
                f"{settings.user_jwt_claim!r} claim must be the request's user_id."
            ),
        }
    return schemes


def operation_security(settings: Settings, path: str, method: str) -> Schema:
    """``security`` and the guard's ``responses`` for one operation (both may be absent)."""
    operation = (path, method.lower())
    if operation in PUBLIC_OPERATIONS:
        return {"security": [], "responses": {}}
    responses: Schema = {}
    forbidden: list[str] = []
    if operation == ("/tokens/{user_id}", "get"):
        forbidden.append(f"{r.BAD_ADMIN_TOKEN}: the {ADMIN_HEADER} header is not valid")
    if not _secured(settings):
        if forbidden:
            responses["403"] = _error("; ".join(forbidden))
        return {"responses": responses}
    users_too = settings.user_jwt_enabled and (
        operation in USER_OPERATIONS or operation in ANY_CALLER_OPERATIONS
    )
    security: list[Schema] = [{SERVICE_SCHEME: []}]
    if users_too:
        security.append({USER_SCHEME: []})
    if settings.api_token is not None and not settings.user_jwt_enabled:
        forbidden.append(f"{r.BAD_SERVICE_TOKEN}: the bearer token is not the service token")
    if settings.user_jwt_enabled:
        if operation in USER_OPERATIONS:
            forbidden.append(f"{r.USER_MISMATCH}: the JWT is for another user")
            if operation == ("/tokens/{user_id}", "get"):
                forbidden.append(f"{r.USER_CANNOT_UNMASK}: a user JWT with {ADMIN_HEADER}")
        elif operation not in ANY_CALLER_OPERATIONS:
            forbidden.append(f"{r.SERVICE_ONLY}: a user JWT on a service endpoint")
    codes_401 = _CODES_401 if settings.user_jwt_enabled else _CODES_401[:2]
    responses["401"] = _error(
        "no valid credentials; code: " + ", ".join(codes_401),
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    )
    if forbidden:
        responses["403"] = _error("; ".join(forbidden))
    too_many = [f"{r.TOO_MANY_FAILURES}: too many refused requests from this address"]
    if operation == ("/tokens", "post") and settings.user_jwt_enabled:
        too_many.insert(0, f"{r.TOO_MANY_REGISTRATIONS}: too many registrations for this user")
    responses["429"] = _error("; ".join(too_many), _RETRY_AFTER)
    if settings.user_jwks_url:
        responses["503"] = _error(
            f"{r.KEYS_UNAVAILABLE}: the JWT's key set cannot be fetched", _RETRY_AFTER
        )
    return {"security": security, "responses": responses}


def apply_security(document: Schema, settings: Settings) -> Schema:
    """``document`` (from ``build_openapi``) with this module's security, as a new document.

    The guard's 401/403/429 replace the document's own; a 503 it already has
    keeps its content, its description extended.  Applying it again changes
    nothing.
    """
    doc = copy.deepcopy(document)
    doc.pop("security", None)
    components = doc.setdefault("components", {})
    components.pop("securitySchemes", None)
    schemes = security_schemes(settings)
    if schemes:
        components["securitySchemes"] = schemes
    error = components.get("schemas", {}).get("Error")
    if error is not None:
        error.setdefault("properties", {})["code"] = {
            "type": "string",
            "description": "a short fixed word for the refusal, e.g. token_expired",
        }
    for path, item in doc.get("paths", {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            extra = operation_security(settings, path, method)
            if "security" in extra:
                operation["security"] = extra["security"]
            answers = operation.setdefault("responses", {})
            for status in ("401", "403", "429"):
                answers.pop(status, None)
            for status, response in extra["responses"].items():
                if status in answers:
                    merged = dict(answers[status])
                    # Applied twice, a description is not extended twice.
                    if response["description"] not in merged["description"]:
                        merged["description"] += "; " + response["description"]
                    merged.setdefault("headers", {}).update(response.get("headers", {}))
                    answers[status] = merged
                else:
                    answers[status] = response
    return doc


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until a retry may succeed",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _secured(settings: Settings) -> bool:
    return settings.api_token is not None or settings.user_jwt_enabled


def _error(description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response
