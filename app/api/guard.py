"""One object for the middleware and the handlers: credentials, limits, and their order.

Per request:

1. :meth:`RequestGuard.identify` (middleware, every path but the public ones).
   An open API lets everyone in, unlimited (development).  The service token
   is accepted at once, whatever the address.  Otherwise an address over its
   refusal limit is 429 before any JWT is verified (no CPU and no key-set
   fetch for a client that keeps failing); then the JWT is verified.  The
   result is a :class:`~app.api.callers.Caller` or a refusal.
2. :meth:`RequestGuard.authorize` (handler, once it knows the target user:
   the path's ``user_id``, or the parsed body's for ``POST /tokens``; ``None``
   for service endpoints such as ``/stats`` and ``/metrics``): 403 for another
   user's tokens or a user JWT on a service endpoint, then the per-user
   registration limit.  An endpoint any identified caller may read
   (``/openapi.json``) skips this step.
3. :meth:`RequestGuard.record` (middleware, after the answer): counts a
   401/403/429 against the address.
"""

from __future__ import annotations

import logging
import time

from app.api import callers
from app.api.callers import AuthConfig, Caller, ServiceCredentials
from app.api.jwt_keys import Clock, KeySource, key_source_from_settings
from app.api.limits import AbuseLimits, client_key
from app.api.refusals import Refusal
from app.api.user_jwt import JwtVerifier
from app.config import Settings

log = logging.getLogger(__name__)

#: Logged once when the worker's API starts without any authentication.
OPEN_API_WARNING = (
    "the HTTP API is OPEN: anyone who reaches this port may register, read and remove "
    "any user's push tokens. Set PUSHES_API_TOKEN (a trusted backend) and/or "
    "PUSHES_USER_JWKS_URL or PUSHES_USER_JWT_PUBLIC_KEY (user JWTs), and "
    "PUSHES_REQUIRE_AUTH=true in production"
)


class RequestGuard:
    """Authentication and abuse limits of the token API (see the module doc)."""

    def __init__(
        self,
        config: AuthConfig,
        verifier: JwtVerifier | None,
        limits: AbuseLimits,
        *,
        trusted_proxy_hops: int = 0,
    ) -> None:
        if config.user_jwt and verifier is None:
            raise ValueError("user JWTs are configured but no verifier was given")
        self.config = config
        self.verifier = verifier
        self.limits = limits
        self.trusted_proxy_hops = trusted_proxy_hops

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.monotonic) -> RequestGuard:
        """The guard ``settings`` configure; a bad PEM key file raises ``ConfigError`` here."""
        keys: KeySource | None = key_source_from_settings(settings, clock=clock)
        verifier = None
        if keys is not None:
            # Settings validation guarantees both when a key source is set.
            assert settings.user_jwt_issuer and settings.user_jwt_audience
            verifier = JwtVerifier(
                keys,
                issuer=settings.user_jwt_issuer,
                audience=settings.user_jwt_audience,
                leeway_seconds=settings.user_jwt_leeway_seconds,
            )
        return cls(
            AuthConfig.from_settings(settings),
            verifier,
            AbuseLimits.from_settings(settings, clock=clock),
            trusted_proxy_hops=settings.trusted_proxy_hops,
        )

    def address(self, remote: str | None, forwarded_for: str | None) -> str:
        """The key a request's client is limited by (see :func:`app.api.limits.client_key`)."""
        return client_key(remote, forwarded_for, self.trusted_proxy_hops)

    async def identify(self, authorization: str | None, address: str) -> Caller | Refusal:
        """Who is calling, or the 401/403/429/503 refusing the request."""
        if self.config.open:
            return callers.ANONYMOUS
        if isinstance(callers.read_credentials(authorization, self.config), ServiceCredentials):
            return callers.SERVICE
        blocked = self.limits.admit_address(address)
        if blocked is not None:
            return blocked
        presented = await callers.present(authorization, self.config, self.verifier)
        return callers.identify(self.config, presented)

    def authorize(
        self, caller: Caller, target_user: object | None, *, registration: bool = False
    ) -> Caller | Refusal:
        """Whether ``caller`` may act for ``target_user``; ``registration`` counts a POST."""
        allowed = callers.authorize(caller, target_user, self.config.user_claim)
        if isinstance(allowed, Refusal) or not registration:
            return allowed
        return self.limits.admit_registration(allowed) or allowed

    def record(self, address: str, status: int) -> None:
        """Count the answer's status against ``address`` (401, 403 and 429 count).

        Not on an open API: there is no credential to guess, and development
        tools (load generators, fuzzers) must not be slowed down.
        """
        if not self.config.open:
            self.limits.record_answer(address, status)

    def start(self) -> None:
        """When the API starts serving: warn once if it is open, else start loading the keys."""
        if self.config.open:
            log.warning(OPEN_API_WARNING)
        elif self.verifier is not None:
            self.verifier.keys.start()

    async def close(self) -> None:
        """Release the key source (its HTTP session)."""
        if self.verifier is not None:
            await self.verifier.keys.close()
