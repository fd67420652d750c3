"""The public keys that user JWTs are checked against: a JWKS URL or a PEM file.

Only asymmetric keys are ever used: RSA (RS256, at least 2048 bits) and EC
P-256 (ES256).  Each key is bound to its one algorithm here, and PyJWT refuses
a token whose header names another, so neither ``alg: none`` nor an HMAC
"signed" with the public key can be verified against one of these keys.

A JWKS is fetched with aiohttp and cached.  The decision of what a lookup does
is pure (:func:`plan_lookup`); :class:`JwksKeys` is the I/O around it:

- a known ``kid`` is answered from the cache at once; after ``max_age`` the
  set is fetched again in the background, so a key the issuer withdrew stops
  working, while requests never wait for a routine refresh;
- an unknown ``kid`` fetches the set again (an issuer rotating its keys),
  but fetch attempts start at most once per ``min_fetch_interval`` (60 s), and
  every request that needs a fetch meanwhile waits on the one in flight, so a
  burst of forged key ids costs one fetch a minute, not one per request;
- a fetch gives up after ``fetch_timeout``.  Until one succeeds, a token
  whose key is not cached is answered **503** (``keys_unavailable``, with
  ``Retry-After``), not 401: the token may well be valid, and a 401 would tell
  the app to discard it and sign the user in again, for every user at once,
  exactly while the issuer is in trouble.  Tokens whose key is cached keep
  working through an outage.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

from app.api import refusals
from app.api.refusals import Refusal
from app.config import ConfigError, Settings

log = logging.getLogger(__name__)

#: The only JWT algorithms accepted, ever.
ALLOWED_ALGORITHMS = ("RS256", "ES256")
MIN_RSA_BITS = 2048
#: A key set larger than this is refused rather than buffered.
MAX_JWKS_BYTES = 256 * 1024

Clock = Callable[[], float]


class KeySource(Protocol):
    """Where a JWT's verification key comes from."""

    async def key_for(self, kid: str | None) -> PyJWK | Refusal:
        """The key a token with header ``kid`` must verify with, or why there is none."""
        ...

    def start(self) -> None:
        """Begin loading keys in the background, if there is anything to load (no waiting)."""
        ...

    async def close(self) -> None:
        """Release what the source holds open (an HTTP session)."""
        ...


def usable_key(jwk: object) -> PyJWK | None:
    """``jwk`` as a verification key bound to RS256 or ES256, or ``None`` if unusable.

    Unusable: not an object, an encryption key (``use`` other than ``sig``),
    another key type or curve, an ``alg`` outside :data:`ALLOWED_ALGORITHMS`,
    an RSA key under :data:`MIN_RSA_BITS`, or key material that does not parse.
    """
    if not isinstance(jwk, Mapping) or jwk.get("use", "sig") != "sig":
        return None
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if kty == "RSA" and alg in (None, "RS256"):
        algorithm = "RS256"
    elif kty == "EC" and jwk.get("crv") == "P-256" and alg in (None, "ES256"):
        algorithm = "ES256"
    else:
        return None
    try:
        key = PyJWK.from_dict(dict(jwk), algorithm)
    except (PyJWTError, ValueError, TypeError):
        return None
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        return None
    # A JWKS holds public keys only; a private key here is a publishing mistake.
    if not isinstance(key.key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        return None
    return key


def parse_jwks(document: object) -> dict[str, PyJWK]:
    """The usable keys of a JWKS document, by ``kid``.

    Keys without a ``kid`` are left out: a token must name its key.  When two
    keys share a ``kid`` the first one is kept.  Raises :class:`ValueError`
    when the document is not a key set or has no usable key.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWK set (no "keys" list)')
    keys: dict[str, PyJWK] = {}
    for jwk in document["keys"]:
        kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
        if not isinstance(kid, str) or not kid or kid in keys:
            continue
        key = usable_key(jwk)
        if key is not None:
            keys[kid] = key
    if not keys:
        raise ValueError("the key set has no usable RS256/ES256 signing key with a kid")
    return keys


def pem_key(data: bytes) -> PyJWK:
    """A PEM public key (RSA of 2048 bits or more, or EC P-256) as a bound key.

    Raises :class:`ValueError` for anything else.
    """
    public = load_pem_public_key(data)
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise ValueError(f"the RSA key has {public.key_size} bits; at least {MIN_RSA_BITS}")
        return PyJWK.from_dict(RSAAlgorithm.to_jwk(public, as_dict=True), "RS256")
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, ec.SECP256R1):
        return PyJWK.from_dict(ECAlgorithm.to_jwk(public, as_dict=True), "ES256")
    raise ValueError("only RSA and EC P-256 public keys are accepted (RS256, ES256)")


class PemKeys:
    """One public key from a PEM file; every token is checked against it, whatever its kid."""

    def __init__(self, key: PyJWK) -> None:
        self.key = key

    @classmethod
    def from_file(cls, path: str) -> PemKeys:
        """Load the key at ``path``; a :class:`ConfigError` names the setting otherwise."""
        try:
            return cls(pem_key(Path(path).read_bytes()))
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ConfigError(
                f"PUSHES_USER_JWT_PUBLIC_KEY={path!r} cannot be read: {reason}"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"PUSHES_USER_JWT_PUBLIC_KEY={path!r}: {exc}") from None

    async def key_for(self, kid: str | None) -> PyJWK | Refusal:
        """The file's key."""
        return self.key

    def start(self) -> None:
        """Nothing to load: the file was read when the worker was built."""

    async def close(self) -> None:
        """Nothing is held open."""


class Step(enum.Enum):
    """What a key lookup does next."""

    USE = "use the cached key"
    USE_AND_REFRESH = "use the cached key, and fetch the set again in the background"
    FETCH = "fetch the set (or wait for the fetch in flight), then look again"


@dataclass
class KeySetState:
    """What a :class:`JwksKeys` knows: the keys and when it last tried to fetch them."""

    keys: dict[str, PyJWK] = field(default_factory=dict)
    #: Clock time of the last successful fetch, of the last attempt (started).
    fetched_at: float | None = None
    attempted_at: float | None = None
    #: Whether the last finished attempt failed.
    failing: bool = False
    #: Whether a fetch is running now.
    in_flight: bool = False


def plan_lookup(
    kid: str | None,
    state: KeySetState,
    now: float,
    *,
    min_fetch_interval: float,
    max_age: float,
    may_fetch: bool = True,
) -> Step | Refusal:
    """The next step of looking up ``kid`` (pure).

    ``may_fetch=False`` is the look after a fetch: it answers from the state.
    """
    if kid is None:
        return refusals.missing_kid()
    fetch_allowed = may_fetch and (
        state.in_flight
        or state.attempted_at is None
        or now - state.attempted_at >= min_fetch_interval
    )
    if kid in state.keys:
        stale = state.fetched_at is None or now - state.fetched_at >= max_age
        return Step.USE_AND_REFRESH if stale and fetch_allowed and not state.in_flight else Step.USE
    if fetch_allowed:
        return Step.FETCH
    if state.failing or state.fetched_at is None:
        next_try = (state.attempted_at or now) + min_fetch_interval
        return refusals.keys_unavailable(max(next_try - now, 1.0))
    return refusals.unknown_kid()


class JwksKeys:
    """Keys from a JWKS URL, cached, fetched again on an unknown kid (rate-limited)."""

    def __init__(
        self,
        url: str,
        *,
        clock: Clock = time.monotonic,
        min_fetch_interval: float = 60.0,
        fetch_timeout: float = 5.0,
        max_age: float = 600.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.clock = clock
        self.min_fetch_interval = min_fetch_interval
        self.fetch_timeout = fetch_timeout
        self.max_age = max_age
        self.state = KeySetState()
        #: Fetch attempts started, for tests and metrics.
        self.fetches = 0
        self._session = session
        self._own_session = session is None
        self._fetch: asyncio.Task[None] | None = None

    async def key_for(self, kid: str | None) -> PyJWK | Refusal:
        """The key named ``kid``, fetching the set when it is not known (see the module doc)."""
        step = self._plan(kid, may_fetch=True)
        if step is Step.USE_AND_REFRESH:
            self._start_fetch()
        elif step is Step.FETCH:
            await self.refresh()
            step = self._plan(kid, may_fetch=False)
        if isinstance(step, Refusal):
            return step
        assert kid is not None  # plan_lookup refuses a missing kid
        return self.state.keys[kid]

    def start(self) -> None:
        """Fetch the set in the background (at start-up), so the first JWT need not wait.

        The worker does not wait for it: an issuer that is down must not keep
        the API from serving the service token and the health checks.
        """
        self._start_fetch()

    async def refresh(self) -> None:
        """Fetch the set now, or wait for the fetch in flight (e.g. at start-up).

        Never raises: a failure is logged and kept in :attr:`state`.
        """
        # Shielded: a request that gives up must not cancel the fetch that
        # other requests are waiting on.
        await asyncio.shield(self._start_fetch())

    async def close(self) -> None:
        """Stop a fetch in flight and close the HTTP session if this object opened it."""
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
            await asyncio.gather(self._fetch, return_exceptions=True)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _plan(self, kid: str | None, *, may_fetch: bool) -> Step | Refusal:
        return plan_lookup(
            kid,
            self.state,
            self.clock(),
            min_fetch_interval=self.min_fetch_interval,
            max_age=self.max_age,
            may_fetch=may_fetch,
        )

    def _start_fetch(self) -> asyncio.Task[None]:
        if self._fetch is None or self._fetch.done():
            self.state.attempted_at = self.clock()
            self.state.in_flight = True
            self.fetches += 1
            self._fetch = asyncio.get_running_loop().create_task(self._fetch_once())
        return self._fetch

    async def _fetch_once(self) -> None:
        try:
            keys = parse_jwks(await self._download())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The reason is ours or the HTTP library's, never the set's content.
            log.warning("could not fetch the user JWT key set from %s: %s", self.url, _reason(exc))
            self.state.failing = True
        else:
            if set(keys) != set(self.state.keys):
                log.info("user JWT key set from %s: key ids %s", self.url, sorted(keys))
            self.state.keys = keys
            self.state.fetched_at = self.clock()
            self.state.failing = False
        finally:
            self.state.in_flight = False

    async def _download(self) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.fetch_timeout)
        async with self._session.get(self.url, timeout=timeout) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = await response.content.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise ValueError(f"the key set is over {MAX_JWKS_BYTES} bytes")
            return json.loads(body)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON"
    if isinstance(exc, ValueError):
        return str(exc)
    return type(exc).__name__


def key_source_from_settings(
    settings: Settings, *, clock: Clock = time.monotonic
) -> KeySource | None:
    """The configured key source, or ``None`` when user JWTs are off.

    Reads the PEM file at once, so a bad file stops the worker at start.
    """
    if settings.user_jwks_url:
        return JwksKeys(settings.user_jwks_url, clock=clock)
    if settings.user_jwt_public_key:
        return PemKeys.from_file(settings.user_jwt_public_key)
    return None
