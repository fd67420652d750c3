"""Who may call the HTTP API: an optional bearer token, and an admin secret.

``PUSHES_API_TOKEN`` protects every endpoint but the health checks; without it
the API is open (local development).  ``PUSHES_ADMIN_TOKEN``, sent as
``X-Admin-Token``, additionally unmasks push tokens in ``GET /tokens/{user_id}``.
Comparisons take constant time, so response timing does not reveal a secret
character by character.
"""

from __future__ import annotations

import hmac

from app.api.problems import Problem

#: Paths answered without a token: orchestrators probe them without secrets.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
ADMIN_HEADER = "X-Admin-Token"


def check_bearer(path: str, authorization: str | None, api_token: str | None) -> None:
    """Raise :class:`Problem` unless the request may reach ``path``.

    No ``Authorization`` header (or not a bearer one) is 401; a bearer token
    that is not the configured one is 403.
    """
    if api_token is None or path in PUBLIC_PATHS:
        return
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise Problem(401, "authentication required: send 'Authorization: Bearer <token>'")
    if not _same(credentials.strip(), api_token):
        raise Problem(403, "the bearer token is not valid")


def reveals_tokens(admin_header: str | None, admin_token: str | None) -> bool:
    """Whether the caller may see full push tokens.

    No header: no (tokens are masked).  A header that is not the configured
    admin secret, or any header when none is configured, raises 403: a caller
    who asked for full tokens must learn that they were refused.
    """
    if admin_header is None:
        return False
    if admin_token is None or not _same(admin_header.strip(), admin_token):
        raise Problem(403, f"the {ADMIN_HEADER} header is not valid")
    return True


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
