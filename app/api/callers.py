"""Who is calling the token API, and whether they may act for the user they name.

Two kinds of caller hold credentials:

- a **service** presents the service token (``PUSHES_API_TOKEN``) as its
  bearer token: a trusted backend, which may act for any user;
- a **user** (a mobile app) presents a JWT as its bearer token; it may act
  only for the user in the JWT's user claim (``PUSHES_USER_JWT_CLAIM``,
  default ``sub``), compared after :func:`app.domain.records.normalize_user_id`, so
  ``42``, ``"42"`` and ``" 42 "`` are one user.  It sees its own devices, always
  masked, and may not call service endpoints (``/stats``, ``/metrics``, ...).

With neither configured the API is open and every caller is **anonymous**
(local development; ``PUSHES_REQUIRE_AUTH`` forbids it).

The decisions are pure: :func:`identify` (who is it, or 401), :func:`authorize`
(may it act for this user, or 403) and :func:`decide` (both).  Only
:func:`present` awaits, to verify a JWT.  A handler that learns its target
user from the body can identify in the middleware (so a bad credential is a
401 before the body is read) and authorize after parsing.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.api import refusals
from app.api.auth import ADMIN_HEADER, reveals_tokens
from app.api.problems import Problem
from app.api.refusals import Refusal
from app.api.user_jwt import JwtVerifier, VerifiedJwt
from app.config import Settings
from app.domain.records import InvalidRecord, normalize_user_id


class CallerKind(enum.Enum):
    """The kinds of caller."""

    SERVICE = "service"
    USER = "user"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Caller:
    """An identified caller; ``user_id`` (normalised) for a user."""

    kind: CallerKind
    user_id: str | None = None

    @property
    def is_user(self) -> bool:
        """Whether this is a user JWT's holder (bound to one user)."""
        return self.kind is CallerKind.USER


SERVICE = Caller(CallerKind.SERVICE)
ANONYMOUS = Caller(CallerKind.ANONYMOUS)


def user_caller(user_id: str) -> Caller:
    """The caller acting for ``user_id``."""
    return Caller(CallerKind.USER, user_id)


@dataclass(frozen=True)
class AuthConfig:
    """The authentication the API is configured with."""

    service_token: str | None = field(default=None, repr=False)
    #: Whether user JWTs are accepted (a key source is configured).
    user_jwt: bool = False
    user_claim: str = "sub"

    @property
    def open(self) -> bool:
        """No credentials configured: everyone is anonymous."""
        return self.service_token is None and not self.user_jwt

    @classmethod
    def from_settings(cls, settings: Settings) -> AuthConfig:
        """The authentication ``settings`` configure."""
        return cls(
            service_token=settings.api_token,
            user_jwt=settings.user_jwt_enabled,
            user_claim=settings.user_jwt_claim,
        )


# What a request presented, once any JWT in it was verified.
@dataclass(frozen=True)
class NoCredentials:
    """No ``Authorization`` header."""


@dataclass(frozen=True)
class ServiceCredentials:
    """The service token."""


Presented = NoCredentials | ServiceCredentials | VerifiedJwt | Refusal


def bearer_token(authorization: str | None) -> str | Refusal | None:
    """The bearer value of an ``Authorization`` header; ``None`` without one."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if not scheme:
        return None
    if scheme.lower() != "bearer":
        return refusals.not_bearer()
    credentials = credentials.strip()
    return credentials or refusals.missing_credentials()


def is_service_token(token: str, config: AuthConfig) -> bool:
    """Whether ``token`` is the service token (compared in constant time)."""
    if config.service_token is None:
        return False
    return hmac.compare_digest(token.encode("utf-8"), config.service_token.encode("utf-8"))


def read_credentials(authorization: str | None, config: AuthConfig) -> Presented | str:
    """What the header presents without verifying a JWT: the JWT's text is returned as is."""
    token = bearer_token(authorization)
    if token is None:
        return NoCredentials()
    if isinstance(token, Refusal):
        return token
    if is_service_token(token, config):
        return ServiceCredentials()
    if not config.user_jwt:
        return refusals.bad_service_token()
    return token


async def present(
    authorization: str | None, config: AuthConfig, verifier: JwtVerifier | None
) -> Presented:
    """What the request's ``Authorization`` header presents, a JWT verified."""
    if config.open:
        return NoCredentials()
    presented = read_credentials(authorization, config)
    if not isinstance(presented, str):
        return presented
    if verifier is None:
        raise RuntimeError("user JWTs are configured but no verifier was given")
    return await verifier.verify(presented)


def identify(config: AuthConfig, presented: Presented) -> Caller | Refusal:
    """Who the caller is, or the 401 (403 for a wrong service token) that refuses it."""
    if config.open:
        return ANONYMOUS
    if isinstance(presented, Refusal):
        return presented
    if isinstance(presented, NoCredentials):
        return refusals.missing_credentials()
    if isinstance(presented, ServiceCredentials):
        return SERVICE
    return _user_from_claims(presented.claims, config.user_claim)


def _user_from_claims(claims: Mapping[str, Any], claim: str) -> Caller | Refusal:
    value = claims.get(claim)
    if value is None:
        return refusals.user_claim_missing(claim)
    try:
        return user_caller(normalize_user_id(value))
    except InvalidRecord:
        return refusals.user_claim_invalid(claim)


def authorize(caller: Caller, target_user: object | None, claim: str = "sub") -> Caller | Refusal:
    """Whether ``caller`` may act for ``target_user``.

    ``target_user`` is the ``user_id`` of the body or path (raw or normalised),
    or ``None`` for an endpoint that concerns no single user, which only the
    service (or anyone, on an open API) may call.
    """
    if not caller.is_user:
        return caller
    if target_user is None:
        return refusals.service_only()
    try:
        target = normalize_user_id(target_user)
    except InvalidRecord as exc:
        return refusals.bad_user_id(str(exc))
    if target != caller.user_id:
        return refusals.user_mismatch(claim)
    return caller


def decide(
    config: AuthConfig, presented: Presented, target_user: object | None
) -> Caller | Refusal:
    """Who the caller is and whether it may act for ``target_user``, or the refusal."""
    caller = identify(config, presented)
    if isinstance(caller, Refusal):
        return caller
    return authorize(caller, target_user, config.user_claim)


def reveal_tokens(
    caller: Caller, admin_header: str | None, admin_token: str | None
) -> bool | Refusal:
    """Whether ``GET /tokens/{user_id}`` shows full push tokens.

    Users never see them: a user JWT with the admin header is refused (403),
    as a wrong admin secret is, so the caller learns it was not granted.
    """
    if caller.is_user:
        return refusals.user_cannot_unmask(ADMIN_HEADER) if admin_header is not None else False
    try:
        return reveals_tokens(admin_header, admin_token)
    except Problem as problem:
        return refusals.bad_admin_token(problem.message)
