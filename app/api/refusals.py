"""Every answer the API's authentication and abuse limits can refuse with.

A refusal carries the HTTP status, a short fixed ``code`` (for clients,
metrics labels and tests) and a sentence for people.  No message quotes the
presented token or any claim value from it: an error body or a log line must
never carry a credential, and a forged token's contents are the attacker's
text.  The only token-derived text a message may name is the JWT algorithm,
and only when it is one of the registered JOSE names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Header sent with every 401: says which scheme the API expects.
REALM = 'Bearer realm="pushes"'

#: Algorithm names a message may repeat back (RFC 7518's list and EdDSA).
_KNOWN_ALGORITHMS = frozenset(
    {
        "none",
        *(f"{family}{bits}" for family in ("HS", "RS", "ES", "PS") for bits in (256, 384, 512)),
        "ES256K",
        "EdDSA",
    }
)


@dataclass(frozen=True)
class Refusal:
    """A request the API does not serve, and how to answer it."""

    status: int
    code: str
    message: str
    #: Seconds until trying again may succeed (429 and 503).
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        """The response headers this refusal needs (``WWW-Authenticate``, ``Retry-After``)."""
        headers: dict[str, str] = {}
        if self.status == 401:
            # RFC 6750: invalid_token tells a client to get a new token, while
            # a missing one gets only the challenge.
            missing = self.code in (MISSING_CREDENTIALS, NOT_BEARER)
            headers["WWW-Authenticate"] = REALM if missing else f'{REALM}, error="invalid_token"'
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        return headers

    def body(self) -> dict[str, str]:
        """The JSON error body: the API's ``{"error": ...}`` plus the code."""
        return {"error": self.message, "code": self.code}


def seconds_header(seconds: float) -> int:
    """A ``Retry-After`` value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))


def _algorithm_name(alg: object) -> str:
    return repr(alg) if isinstance(alg, str) and alg in _KNOWN_ALGORITHMS else "this algorithm"


# Codes, one per refusal.
MISSING_CREDENTIALS = "missing_credentials"
NOT_BEARER = "not_bearer"
BAD_SERVICE_TOKEN = "bad_service_token"
MALFORMED_TOKEN = "malformed_token"
ALG_NONE = "alg_none"
ALG_NOT_ALLOWED = "alg_not_allowed"
MISSING_KID = "missing_kid"
UNKNOWN_KID = "unknown_kid"
KEYS_UNAVAILABLE = "keys_unavailable"
BAD_SIGNATURE = "bad_signature"
EXPIRED = "token_expired"
NOT_YET_VALID = "token_not_yet_valid"
WRONG_ISSUER = "wrong_issuer"
WRONG_AUDIENCE = "wrong_audience"
MISSING_CLAIM = "missing_claim"
INVALID_CLAIM = "invalid_claim"
USER_CLAIM_MISSING = "user_claim_missing"
USER_CLAIM_INVALID = "user_claim_invalid"
USER_MISMATCH = "user_mismatch"
SERVICE_ONLY = "service_only"
USER_CANNOT_UNMASK = "user_cannot_unmask"
BAD_ADMIN_TOKEN = "bad_admin_token"
BAD_USER_ID = "bad_user_id"
TOO_MANY_REGISTRATIONS = "too_many_registrations"
TOO_MANY_FAILURES = "too_many_failures"


def missing_credentials() -> Refusal:
    """No ``Authorization`` header (or an empty one)."""
    return Refusal(
        401,
        MISSING_CREDENTIALS,
        "authentication required: send 'Authorization: Bearer <token>' "
        "(the service token or a user JWT)",
    )


def not_bearer() -> Refusal:
    """An ``Authorization`` header of another scheme, e.g. Basic."""
    return Refusal(401, NOT_BEARER, "the Authorization header must be 'Bearer <token>'")


def bad_service_token() -> Refusal:
    """A bearer token that is not the service token, where user JWTs are not accepted."""
    return Refusal(403, BAD_SERVICE_TOKEN, "the bearer token is not valid")


def malformed_token(detail: str = "it is not a well-formed JWT") -> Refusal:
    """A bearer value that cannot be decoded as a JWT, or whose claims are of the wrong type."""
    return Refusal(
        401,
        MALFORMED_TOKEN,
        f"the bearer token is neither the service token nor a usable JWT: {detail}",
    )


def alg_none() -> Refusal:
    """An unsigned JWT."""
    return Refusal(401, ALG_NONE, "unsigned JWTs (alg: none) are not accepted")


def alg_not_allowed(alg: object) -> Refusal:
    """A JWT signed with an algorithm other than RS256 or ES256 (e.g. HS256)."""
    return Refusal(
        401,
        ALG_NOT_ALLOWED,
        f"the JWT algorithm {_algorithm_name(alg)} is not accepted: only RS256 and ES256 "
        "(an HMAC such as HS256 is refused, whatever its secret)",
    )


def alg_key_mismatch(alg: object, key_alg: str) -> Refusal:
    """A JWT whose algorithm is allowed, but not the one of the key it names."""
    return Refusal(
        401,
        ALG_NOT_ALLOWED,
        f"the JWT algorithm {_algorithm_name(alg)} does not match its key, which is {key_alg}",
    )


def missing_kid() -> Refusal:
    """A JWT without the ``kid`` header, checked against a key set."""
    return Refusal(401, MISSING_KID, "the JWT names no key id (kid header); the key set needs one")


def unknown_kid() -> Refusal:
    """A JWT whose ``kid`` is not in the key set, even after fetching it again."""
    return Refusal(401, UNKNOWN_KID, "the JWT's key id (kid) is not in the issuer's key set")


def keys_unavailable(retry_after: float) -> Refusal:
    """The key set cannot be fetched, and the JWT's key is not among the cached ones."""
    return Refusal(
        503,
        KEYS_UNAVAILABLE,
        "the issuer's key set (JWKS) cannot be fetched right now, so this JWT cannot be "
        "checked; try again later",
        retry_after=seconds_header(retry_after),
    )


def bad_signature() -> Refusal:
    """A JWT whose signature does not verify with its key."""
    return Refusal(401, BAD_SIGNATURE, "the JWT's signature is not valid")


def expired() -> Refusal:
    """A JWT past its ``exp`` (beyond the leeway)."""
    return Refusal(401, EXPIRED, "the JWT has expired (exp); get a new one")


def not_yet_valid() -> Refusal:
    """A JWT whose ``nbf`` or ``iat`` is in the future (beyond the leeway)."""
    return Refusal(401, NOT_YET_VALID, "the JWT is not valid yet (nbf or iat is in the future)")


def wrong_issuer() -> Refusal:
    """A JWT from another issuer (``iss``)."""
    return Refusal(401, WRONG_ISSUER, "the JWT's issuer (iss) is not the one this API trusts")


def wrong_audience() -> Refusal:
    """A JWT meant for another service (``aud``)."""
    return Refusal(401, WRONG_AUDIENCE, "the JWT's audience (aud) is not this API")


def missing_claim(claim: str) -> Refusal:
    """A JWT without a claim the API requires (``exp``, ``iss``, ``aud``)."""
    return Refusal(401, MISSING_CLAIM, f"the JWT lacks the required claim {claim!r}")


def invalid_claim(claim: str) -> Refusal:
    """A registered claim of the wrong type (e.g. a text ``exp``)."""
    return Refusal(401, INVALID_CLAIM, f"the JWT's {claim!r} claim has the wrong type")


def user_claim_missing(claim: str) -> Refusal:
    """A valid JWT that names no user in the configured claim."""
    return Refusal(401, USER_CLAIM_MISSING, f"the JWT has no {claim!r} claim naming its user")


def user_claim_invalid(claim: str) -> Refusal:
    """A valid JWT whose user claim is not a valid user id."""
    return Refusal(401, USER_CLAIM_INVALID, f"the JWT's {claim!r} claim is not a valid user id")


def user_mismatch(claim: str) -> Refusal:
    """A user JWT used for another user's tokens."""
    return Refusal(
        403,
        USER_MISMATCH,
        f"the JWT's user ({claim}) is not the user_id of this request; a user JWT acts "
        "only for its own user",
    )


def service_only() -> Refusal:
    """A user JWT on an endpoint only the service token may call."""
    return Refusal(403, SERVICE_ONLY, "this endpoint needs the service token, not a user JWT")


def user_cannot_unmask(header: str) -> Refusal:
    """A user JWT with the admin header that unmasks push tokens."""
    return Refusal(
        403, USER_CANNOT_UNMASK, f"a user JWT never shows full push tokens; drop {header}"
    )


def bad_admin_token(message: str) -> Refusal:
    """A wrong admin secret (``X-Admin-Token``), with :mod:`app.api.auth`'s message."""
    return Refusal(403, BAD_ADMIN_TOKEN, message)


def bad_user_id(detail: str) -> Refusal:
    """A target user id that cannot be normalised."""
    return Refusal(400, BAD_USER_ID, detail)


def too_many_registrations(limit: int, retry_after: float) -> Refusal:
    """A user over the registration limit."""
    return Refusal(
        429,
        TOO_MANY_REGISTRATIONS,
        f"too many token registrations for this user (at most {limit} an hour); "
        "retry after the Retry-After seconds",
        retry_after=seconds_header(retry_after),
    )


def too_many_failures(limit: int, retry_after: float) -> Refusal:
    """A client address over the limit of refused requests."""
    return Refusal(
        429,
        TOO_MANY_FAILURES,
        f"too many refused requests from this address (at most {limit} a minute); "
        "retry after the Retry-After seconds",
        retry_after=seconds_header(retry_after),
    )
