"""The Firebase Cloud Messaging HTTP v1 sender.

One ``POST {base_url}/v1/projects/{project}/messages:send`` per delivery over
one pooled :class:`aiohttp.ClientSession`, at most ``max_in_flight`` at a time.
The answer is classified by :func:`app.notify.base.classify_fcm_response`;
retrying, pruning and dead-lettering are the caller's business.

OAuth: google-auth's service-account credentials sign the JWT assertion and
exchange it at the file's ``token_uri`` (which is how tests reach the local
fake).  google-auth's refresh is synchronous, so it runs in a worker thread
(:func:`asyncio.to_thread`) over google-auth's own ``requests`` transport with
a bounded timeout.  The alternative, signing with google-auth's signer and
posting the assertion with aiohttp, would copy google-auth's private assertion
code and its error handling; a refresh happens about once an hour, one at a
time, so a thread costs nothing that matters and google-auth stays the one
owner of the protocol.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import aiohttp
import google.auth.exceptions
import google.auth.transport.requests
import orjson
import requests
import yarl
from google.oauth2 import service_account

from app.notify.base import (
    Delivery,
    NullObserver,
    Outcome,
    SenderObserver,
    classify_fcm_response,
    collapse_key,
    short_text,
    wants_credential_refresh,
)

log = logging.getLogger(__name__)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_BASE_URL = "https://fcm.googleapis.com"
DEFAULT_TTL_S = 3600
#: FCM refuses an ``android.ttl`` above four weeks.
MAX_TTL_S = 28 * 24 * 3600
DEFAULT_MAX_IN_FLIGHT = 256


class FcmConfigError(ValueError):
    """The FCM sender's settings or credentials cannot work."""


# --- The message ---------------------------------------------------------------------------------


def build_message(delivery: Delivery, *, ttl_s: int, expires_at: float) -> dict[str, Any]:
    """The FCM v1 ``message`` for one delivery; pure, so every retry builds the same one.

    The Android tag and the APNs collapse id are the same key of
    (payment, status): a repeated send replaces the notification on the phone.
    ``expires_at`` is absolute (the caller's fixed deadline) and ``ttl_s`` a
    constant, so neither moves between two attempts.
    """
    key = collapse_key(delivery.payment_id, delivery.status)
    return {
        "token": delivery.token,
        "notification": {"title": delivery.title, "body": delivery.body},
        "data": {
            "payment_id": delivery.payment_id,
            "status": delivery.status,
            "amount": delivery.amount,
            "currency": delivery.currency,
        },
        "android": {
            "priority": "high",
            "ttl": f"{ttl_s}s",
            "notification": {"tag": key},
        },
        "apns": {
            "headers": {
                "apns-expiration": str(int(expires_at)),
                "apns-collapse-id": key,
                "apns-priority": "10",
                "apns-push-type": "alert",
            },
            "payload": {
                "aps": {
                    "alert": {"title": delivery.title, "body": delivery.body},
                    "sound": "default",
                }
            },
        },
    }


def encode_request(message: Mapping[str, Any]) -> bytes:
    """The ``messages:send`` request body, in a stable byte form (keys in their order)."""
    return orjson.dumps({"message": message})


def send_url(base_url: str, project_id: str) -> str:
    """The ``messages:send`` endpoint of ``project_id``."""
    return f"{base_url.rstrip('/')}/v1/projects/{project_id}/messages:send"


# --- Credentials ---------------------------------------------------------------------------------


def load_credentials(path: str) -> tuple[service_account.Credentials, dict[str, Any]]:
    """google-auth credentials for FCM from a service-account file, and the file's fields.

    Every way the file can be unusable raises :class:`FcmConfigError` naming
    the file, so a bad setting stops the worker at start-up, not at the first
    payment.  (The file is parsed here rather than through
    ``from_service_account_file`` only to tell these cases apart.)
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise FcmConfigError(
            f"FCM credentials file {path} cannot be read: {exc.strerror or exc}"
        ) from exc
    try:
        info = json.loads(text)
    except ValueError as exc:
        raise FcmConfigError(f"FCM credentials file {path} is not JSON: {exc}") from exc
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise FcmConfigError(
            f"FCM credentials file {path} is not a service-account key "
            '(expected "type": "service_account")'
        )
    try:
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=[FCM_SCOPE]
        )
    except ValueError as exc:
        raise FcmConfigError(
            f"FCM credentials file {path} has no usable private key or lacks fields: {exc}"
        ) from exc
    return credentials, info


class _CredentialFailure(Exception):
    """No access token could be had; ``outcome`` is what each waiting send answers."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


def _refresh_failure(exc: Exception) -> _CredentialFailure:
    """The outcome of a failed refresh: the token endpoint's verdict, or a transient error."""
    if isinstance(exc, google.auth.exceptions.TransportError):
        return _CredentialFailure(Outcome.retry("oauth_unavailable", short_text(str(exc))))
    if isinstance(exc, google.auth.exceptions.RefreshError):
        data = exc.args[1] if len(exc.args) > 1 else None
        code = data.get("error") if isinstance(data, Mapping) else None
        label = code if isinstance(code, str) and code else "oauth_error"
        text = short_text(str(exc.args[0]) if exc.args else label)
        if exc.retryable:
            return _CredentialFailure(Outcome.retry(label, text))
        return _CredentialFailure(Outcome.misconfigured(label, text))
    return _CredentialFailure(Outcome.misconfigured("credentials_error", short_text(str(exc))))


class _TimedRequest:
    """google-auth's ``requests`` transport with one timeout forced on every call.

    google-auth calls its transport without a timeout, and the transport's
    default is two minutes: too long for a thread nobody can cancel.
    """

    def __init__(self, session: requests.Session, timeout_s: float) -> None:
        self._inner = google.auth.transport.requests.Request(session)
        self._timeout_s = timeout_s

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        return self._inner(
            url, method=method, body=body, headers=headers, timeout=self._timeout_s, **kwargs
        )


class AccessTokens:
    """The OAuth2 access token for FCM: cached, renewed ahead of expiry, one renewal at a time.

    A token is renewed in the background once it enters its last
    ``refresh_margin_s`` (at most half its life), and awaited only when it is
    about to expire.  Every caller that needs a renewal while one runs waits
    for that one.  After a failed renewal the failure is answered for
    ``failure_cooldown_s`` without asking the token endpoint again, so a
    rejected key costs one token request per cooldown, not one per push.
    """

    def __init__(
        self,
        credentials: service_account.Credentials,
        *,
        timeout_s: float = 10.0,
        refresh_margin_s: float = 300.0,
        failure_cooldown_s: float = 5.0,
        on_refresh: Callable[[Literal["ok", "error"], float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self._http = requests.Session()
        self._request = _TimedRequest(self._http, timeout_s)
        self._margin_s = refresh_margin_s
        self._cooldown_s = failure_cooldown_s
        self._on_refresh = on_refresh
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._usable_until = 0.0
        self._task: asyncio.Task[str] | None = None
        self._failure: _CredentialFailure | None = None
        self._failed_until = 0.0
        #: Renewals that succeeded / failed (each one token-endpoint exchange).
        self.refreshes = 0
        self.failures = 0

    async def get(self) -> str:
        """A valid access token, renewing it first if it is about to expire."""
        now = self._clock()
        token = self._token
        if token is not None and now < self._usable_until:
            if now >= self._renew_at and self._task is None and now >= self._failed_until:
                self._start().add_done_callback(_consume_failure)
            return token
        return await self.refresh(stale=token)

    async def refresh(self, stale: str | None) -> str:
        """A token other than ``stale``: FCM refused ``stale``, or it expired."""
        if self._token not in (None, stale) and self._clock() < self._usable_until:
            assert self._token is not None
            return self._token
        task = self._task
        if task is None:
            if self._failure is not None and self._clock() < self._failed_until:
                raise _CredentialFailure(self._failure.outcome)
            task = self._start()
        try:
            return await asyncio.shield(task)
        except _CredentialFailure as failure:
            # A fresh exception per waiter: re-raising one object grows its traceback.
            raise _CredentialFailure(failure.outcome) from None

    def _start(self) -> asyncio.Task[str]:
        self._task = asyncio.get_running_loop().create_task(self._renew())
        return self._task

    async def _renew(self) -> str:
        started = self._clock()
        try:
            token, lifetime = await asyncio.to_thread(self._renew_blocking)
        except _CredentialFailure as failure:
            self.failures += 1
            self._failure = failure
            self._failed_until = self._clock() + self._cooldown_s
            self._report("error", started)
            raise
        finally:
            self._task = None
        now = self._clock()
        self._token = token
        self._renew_at = now + lifetime - min(self._margin_s, lifetime / 2)
        # Stop using a token shortly before its end: a request needs time to arrive.
        self._usable_until = now + lifetime - min(10.0, lifetime / 10)
        self._failure = None
        self._failed_until = 0.0
        self.refreshes += 1
        self._report("ok", started)
        return token

    def _renew_blocking(self) -> tuple[str, float]:
        """One exchange at the token endpoint; runs in a worker thread."""
        try:
            self._credentials.refresh(self._request)  # type: ignore[no-untyped-call]
        except Exception as exc:
            # Whatever google-auth raises, every waiting send needs an outcome.
            raise _refresh_failure(exc) from exc
        token = self._credentials.token
        if not isinstance(token, str) or not token:
            raise _CredentialFailure(
                Outcome.misconfigured("oauth_error", "the token endpoint answered no token")
            )
        expiry = self._credentials.expiry
        if isinstance(expiry, datetime.datetime):
            # google-auth keeps expiry as a naive UTC datetime.
            utc_now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            lifetime = max(1.0, (expiry - utc_now).total_seconds())
        else:
            lifetime = 3600.0
        return token, lifetime

    def _report(self, result: Literal["ok", "error"], started: float) -> None:
        if self._on_refresh is not None:
            self._on_refresh(result, self._clock() - started)

    def close(self) -> None:
        """Drop the renewal in flight (its thread ends at its timeout) and the HTTP session."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._http.close()


def _consume_failure(task: asyncio.Task[str]) -> None:
    """Mark a background renewal's failure as seen; the next send reports it."""
    if not task.cancelled():
        task.exception()


# --- The sender ----------------------------------------------------------------------------------


class FcmSender:
    """A :class:`app.notify.base.Sender` for Firebase Cloud Messaging HTTP v1.

    The constructor reads and checks the service-account file; :meth:`start`
    opens the connection pool and, with ``verify_on_start``, fetches a first
    access token so that a key the token endpoint rejects stops the start-up
    (a token endpoint that is only unreachable is logged and retried later).
    """

    def __init__(
        self,
        credentials_file: str | os.PathLike[str],
        *,
        project_id: str | None = None,
        base_url: str = DEFAULT_BASE_URL,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        ttl_s: int = DEFAULT_TTL_S,
        token_timeout_s: float = 10.0,
        refresh_margin_s: float = 300.0,
        verify_on_start: bool = True,
        observer: SenderObserver | None = None,
        name: str = "fcm",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_in_flight < 1:
            raise FcmConfigError(f"max_in_flight must be at least 1, not {max_in_flight}")
        if connect_timeout_s <= 0 or read_timeout_s <= 0 or token_timeout_s <= 0:
            raise FcmConfigError("FCM timeouts must be positive")
        if not 0 <= ttl_s <= MAX_TTL_S:
            raise FcmConfigError(f"ttl_s must be within 0..{MAX_TTL_S}, not {ttl_s}")
        if not base_url.startswith(("http://", "https://")):
            raise FcmConfigError(f"FCM base URL must be http(s)://..., not {base_url!r}")
        self._path = os.fspath(credentials_file)
        credentials, info = load_credentials(self._path)
        project = project_id or info.get("project_id")
        if not isinstance(project, str) or not project:
            raise FcmConfigError(
                f"no FCM project: {self._path} has no project_id and none was configured"
            )
        self._project_id = project
        self._token_uri = str(info.get("token_uri"))
        self._url = send_url(base_url, project)
        # Parsed once: a str URL is parsed again for every request.
        self._parsed_url = yarl.URL(self._url)
        self._headers: dict[str, str] = {}
        self._headers_for: str | None = None
        self._name = name
        self._observer: SenderObserver = observer or NullObserver()
        self._clock = clock
        self._ttl_s = ttl_s
        self._max_in_flight = max_in_flight
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout_s + read_timeout_s,
            sock_connect=connect_timeout_s,
            sock_read=read_timeout_s,
        )
        self._verify_on_start = verify_on_start
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tokens = AccessTokens(
            credentials,
            timeout_s=token_timeout_s,
            refresh_margin_s=refresh_margin_s,
            on_refresh=self._refreshed,
        )
        self._session: aiohttp.ClientSession | None = None
        self._in_flight = 0
        #: The most requests that were in flight at once since the start.
        self.max_in_flight_seen = 0

    @property
    def name(self) -> str:
        """``fcm`` unless told otherwise: the ``sender`` label of the metrics."""
        return self._name

    @property
    def project_id(self) -> str:
        """The Firebase project the messages go to."""
        return self._project_id

    @property
    def url(self) -> str:
        """The ``messages:send`` endpoint in use."""
        return self._url

    @property
    def in_flight(self) -> int:
        """Requests to FCM under way now (a gauge can read this)."""
        return self._in_flight

    @property
    def credential_refreshes(self) -> int:
        """Access-token renewals that succeeded."""
        return self._tokens.refreshes

    @property
    def credential_failures(self) -> int:
        """Access-token renewals that failed."""
        return self._tokens.failures

    async def start(self) -> None:
        """Open the connection pool and, if asked, prove the key with a first token."""
        if self._session is not None:
            return
        connector = aiohttp.TCPConnector(limit=self._max_in_flight, ttl_dns_cache=300)
        # No cookies: FCM sets none, and the jar's bookkeeping costs every answer.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        )
        if not self._verify_on_start:
            return
        try:
            await self._tokens.get()
        except _CredentialFailure as failure:
            if failure.outcome.kind != "misconfigured":
                log.warning(
                    "FCM token endpoint %s not reachable at start-up (%s); will retry on send",
                    self._token_uri,
                    failure.outcome.error,
                )
                return
            await self.close()
            raise FcmConfigError(
                f"FCM credentials file {self._path}: the token endpoint {self._token_uri} "
                f"refused the service account: {failure.outcome.error}"
            ) from failure

    async def close(self) -> None:
        """Close the connection pool and the token renewal."""
        self._tokens.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def send(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Send every delivery concurrently (at most ``max_in_flight`` at once)."""
        if self._session is None:
            raise RuntimeError("FcmSender.start() was not called")
        if not deliveries:
            return []
        return list(await asyncio.gather(*(self._send_one(d) for d in deliveries)))

    async def _send_one(self, delivery: Delivery) -> Outcome:
        started = time.perf_counter()
        now = self._clock()
        if delivery.expires_at is not None and now >= delivery.expires_at:
            outcome = Outcome.rejected("expired", "the notification's deadline has passed")
        else:
            expires_at = (
                delivery.expires_at if delivery.expires_at is not None else now + self._ttl_s
            )
            body = encode_request(build_message(delivery, ttl_s=self._ttl_s, expires_at=expires_at))
            async with self._slots:
                self._enter()
                try:
                    outcome = await self._send_authorized(body)
                finally:
                    self._leave()
        if outcome.error is not None:
            outcome = replace(outcome, error=short_text(outcome.error, secret=delivery.token))
        self._observer.on_outcome(self._name, outcome, time.perf_counter() - started)
        return outcome

    async def _send_authorized(self, body: bytes) -> Outcome:
        """One request, and one more with a renewed token if FCM refused ours."""
        try:
            access = await self._tokens.get()
        except _CredentialFailure as failure:
            return failure.outcome
        status, outcome = await self._post(body, access)
        if status is None or not wants_credential_refresh(status, outcome):
            return outcome
        try:
            access = await self._tokens.refresh(stale=access)
        except _CredentialFailure as failure:
            return failure.outcome
        status, outcome = await self._post(body, access)
        if status is not None and wants_credential_refresh(status, outcome):
            return replace(outcome, error=f"{outcome.error} (after a credential refresh)")
        return outcome

    async def _post(self, body: bytes, access_token: str) -> tuple[int | None, Outcome]:
        """POST one message; the HTTP status (None without an answer) and its outcome."""
        assert self._session is not None
        if access_token != self._headers_for:
            self._headers = {
                "Authorization": f"Bearer {access_token}",
                "Content-Type": "application/json; charset=UTF-8",
            }
            self._headers_for = access_token
        try:
            async with self._session.post(
                self._parsed_url, data=aiohttp.BytesPayload(body), headers=self._headers
            ) as response:
                raw = await response.read()
                status = response.status
                response_headers = response.headers
        except aiohttp.ConnectionTimeoutError:
            return None, Outcome.retry("connect_timeout", "no connection to FCM in time")
        except asyncio.TimeoutError:
            return None, Outcome.retry("timeout", "FCM did not answer in time")
        except aiohttp.ClientError as exc:
            return None, Outcome.retry(
                "connection_error", short_text(f"{type(exc).__name__}: {exc}")
            )
        try:
            parsed: object = orjson.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, classify_fcm_response(status, response_headers, parsed, now=self._clock())

    def _enter(self) -> None:
        self._in_flight += 1
        self.max_in_flight_seen = max(self.max_in_flight_seen, self._in_flight)
        self._observer.on_in_flight(self._name, self._in_flight)

    def _leave(self) -> None:
        self._in_flight -= 1
        self._observer.on_in_flight(self._name, self._in_flight)

    def _refreshed(self, result: Literal["ok", "error"], duration_s: float) -> None:
        self._observer.on_credential_refresh(self._name, result, duration_s)


__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_IN_FLIGHT",
    "DEFAULT_TTL_S",
    "FCM_SCOPE",
    "MAX_TTL_S",
    "AccessTokens",
    "FcmConfigError",
    "FcmSender",
    "build_message",
    "encode_request",
    "load_credentials",
    "send_url",
]
