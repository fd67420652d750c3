"""Checking a user's JWT: PyJWT does the verification, this module says why it failed.

The header is read first, unverified, for two things only: an algorithm that
is refused outright (``none``, any HMAC, anything but RS256/ES256) gets its
own clear answer before any key is looked up, and the ``kid`` picks the key.
Everything else (the signature against the key bound to its algorithm, the
required ``exp``/``iss``/``aud``, ``exp``/``nbf``/``iat`` within the leeway,
the issuer and the audience) is :func:`jwt.decode`'s, and each of its
exceptions maps to one :mod:`app.api.refusals` answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import exceptions as jwt_errors

from app.api import refusals
from app.api.jwt_keys import ALLOWED_ALGORITHMS, KeySource
from app.api.refusals import Refusal

#: Longer bearer values are refused unread; real user JWTs are far smaller.
MAX_TOKEN_CHARS = 8192
#: Claims every user JWT must carry.
REQUIRED_CLAIMS = ("exp", "iss", "aud")


@dataclass(frozen=True)
class VerifiedJwt:
    """A JWT whose signature and registered claims checked out."""

    claims: Mapping[str, Any]


class JwtVerifier:
    """Verifies user JWTs against a key source, an issuer and an audience."""

    def __init__(
        self, keys: KeySource, *, issuer: str, audience: str, leeway_seconds: float = 30.0
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds

    async def verify(self, token: str) -> VerifiedJwt | Refusal:
        """The token's claims if it is valid now, else the refusal that says why."""
        if len(token) > MAX_TOKEN_CHARS:
            return refusals.malformed_token(f"it is over {MAX_TOKEN_CHARS} characters")
        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.PyJWTError:
            return refusals.malformed_token()
        alg = header.get("alg")
        if isinstance(alg, str) and alg.lower() == "none":
            return refusals.alg_none()
        if alg not in ALLOWED_ALGORITHMS:
            return refusals.alg_not_allowed(alg)
        key = await self.keys.key_for(header.get("kid"))
        if isinstance(key, Refusal):
            return key
        if alg != key.algorithm_name:
            return refusals.alg_key_mismatch(alg, key.algorithm_name)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[key.algorithm_name],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    # The user claim (sub by default) is checked by app.api.callers,
                    # which accepts 42 as well as "42", as the rest of the API does.
                    "verify_sub": False,
                },
            )
        except jwt_errors.PyJWTError as exc:
            return refusal_for(exc)
        return VerifiedJwt(claims)


def refusal_for(exc: jwt_errors.PyJWTError) -> Refusal:
    """The answer to a PyJWT verification error (most specific classes first)."""
    if isinstance(exc, jwt_errors.InvalidSignatureError):
        return refusals.bad_signature()
    if isinstance(exc, jwt_errors.ExpiredSignatureError):
        return refusals.expired()
    if isinstance(exc, jwt_errors.ImmatureSignatureError):
        return refusals.not_yet_valid()
    if isinstance(exc, jwt_errors.InvalidIssuerError):
        return refusals.wrong_issuer()
    if isinstance(exc, jwt_errors.InvalidAudienceError):
        return refusals.wrong_audience()
    if isinstance(exc, jwt_errors.MissingRequiredClaimError):
        return refusals.missing_claim(exc.claim)
    if isinstance(exc, jwt_errors.InvalidIssuedAtError):
        return refusals.invalid_claim("iat")
    if isinstance(exc, jwt_errors.InvalidAlgorithmError):
        return refusals.alg_not_allowed(None)
    # DecodeError and the rest: PyJWT's text may quote the token, so it is not passed on.
    return refusals.malformed_token()
