"""The admin secret, which unmasks push tokens for a trusted operator.

``PUSHES_ADMIN_TOKEN``, sent as ``X-Admin-Token``, additionally unmasks push
tokens in ``GET /tokens/{user_id}``; who may call at all is
:mod:`app.api.callers`' and :mod:`app.api.access`' (the service token and
user JWTs).  The comparison takes constant time, so response timing does not
reveal the secret character by character.
"""

from __future__ import annotations

import hmac

from app.api.problems import Problem

ADMIN_HEADER = "X-Admin-Token"


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
