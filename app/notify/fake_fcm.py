"""A local fake of FCM HTTP v1 and of Google's OAuth2 token endpoint.

It speaks the real protocol, so the real :class:`app.notify.fcm.FcmSender`
runs against it unchanged: the service-account file's ``token_uri`` points at
``POST /token`` here and the sender's base URL at this server.

- ``POST /token`` takes the JWT-bearer grant, verifies the assertion (RS256
  signature against the public key of a service account it trusts, ``iss``,
  ``aud``, ``exp``/``iat``, the FCM scope) and issues access tokens that expire.
  A key it does not know gets Google's ``400 invalid_grant``.
- ``POST /v1/projects/{project}/messages:send`` checks the bearer token (401),
  the project (403), the payload (400 ``INVALID_ARGUMENT`` with FCM's error
  body), then answers from a :class:`Script`: latency, shares of 429 (with
  ``Retry-After``), 503, 500 and hangs, unregistered and invalid tokens, an
  outage window (503s, or a closed port), a SENDER_ID_MISMATCH /
  THIRD_PARTY_AUTH_ERROR mode.  Draws come from a seeded random generator.
- ``/_fake/...`` is the control side: read what was accepted and attempted,
  change the script at run time, revoke tokens, reset the records.

Run it with ``python -m app.notify.fake_fcm --port 8099 --service-account sa.json``
(the file is created with a fresh key if it does not exist).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, cast

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.notify.base import BAD_REQUEST_TYPE, COLLAPSE_KEY_MAX_BYTES, FCM_ERROR_TYPE

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"
QUOTA_FAILURE_TYPE = "type.googleapis.com/google.rpc.QuotaFailure"
#: FCM's limit on the notification and data payload.
MAX_PAYLOAD_BYTES = 4096
MAX_TTL_S = 28 * 24 * 3600

_MESSAGE_FIELDS = frozenset(
    {
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "token",
        "topic",
        "condition",
        "fid",
    }
)
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
_DURATION = re.compile(r"^\d+(\.\d{1,9})?s$")
_APNS_PRIORITIES = frozenset({"1", "5", "10"})
_APNS_PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "location",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
    }
)


# --- Service accounts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccount:
    """A service account the fake can trust: who it is and its public key."""

    project_id: str
    client_email: str
    private_key_id: str
    public_key_pem: str = field(repr=False)
    token_uri: str
    path: str | None = None


def make_service_account(
    path: str | os.PathLike[str],
    token_uri: str,
    project_id: str = "fake-project",
    *,
    client_email: str | None = None,
) -> ServiceAccount:
    """Write a service-account JSON file with a fresh RSA key; return what a fake must trust.

    The file has the fields of a real key file from the Google Cloud console,
    with ``token_uri`` set as given (a fake's ``/token`` in tests).
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    email = client_email or f"pushes@{project_id}.iam.gserviceaccount.com"
    key_id = secrets.token_hex(20)
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": str(secrets.randbelow(10**21)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
    target = os.fspath(path)
    # A private key: readable by its owner only, from the first byte on.
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)
    return ServiceAccount(
        project_id=project_id,
        client_email=email,
        private_key_id=key_id,
        public_key_pem=_public_pem(key.public_key()),
        token_uri=token_uri,
        path=target,
    )


def read_service_account(path: str | os.PathLike[str]) -> ServiceAccount:
    """The trust entry for an existing service-account file (its public key is derived)."""
    target = os.fspath(path)
    with open(target, encoding="utf-8") as handle:
        info = json.load(handle)
    key = serialization.load_pem_private_key(info["private_key"].encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{target}: not an RSA key")
    return ServiceAccount(
        project_id=info["project_id"],
        client_email=info["client_email"],
        private_key_id=info["private_key_id"],
        public_key_pem=_public_pem(key.public_key()),
        token_uri=info["token_uri"],
        path=target,
    )


def _public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# --- The script ----------------------------------------------------------------------------------

ErrorMode = Literal["SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"]
OutageKind = Literal["503", "refuse"]


@dataclass(frozen=True)
class Script:
    """How the fake answers; every share is a probability per accepted request."""

    #: Every send answer waits this long first.
    latency_s: float = 0.0
    share_429: float = 0.0
    #: The ``Retry-After`` value sent with a 429 or an outage 503 (None: no header).
    retry_after: str | None = "1"
    share_503: float = 0.0
    share_500: float = 0.0
    #: Requests that hang for ``hang_s`` (longer than the client's read timeout).
    share_timeout: float = 0.0
    hang_s: float = 30.0
    #: Tokens answered 404 UNREGISTERED / 400 "not a valid FCM registration token".
    unregistered_tokens: tuple[str, ...] = ()
    invalid_tokens: tuple[str, ...] = ()
    #: An outage starting ``outage_after_s`` after the script is set, for ``outage_for_s``.
    outage_after_s: float = 0.0
    outage_for_s: float = 0.0
    outage_kind: OutageKind = "503"
    #: Every authorized send answers this FCM error (None: off).
    error_mode: ErrorMode | None = None
    #: The ``expires_in`` of issued access tokens; they stop working after it.
    token_expires_in_s: float = 3600.0
    seed: int = 0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: Script | None = None) -> Script:
        """``base`` (default: the defaults) with the fields of ``data``; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown script fields: {sorted(unknown)}")
        changes = dict(data)
        for name in ("unregistered_tokens", "invalid_tokens"):
            if name in changes:
                value = changes[name]
                if isinstance(value, str) or not isinstance(value, Iterable):
                    raise ValueError(f"{name} must be a list of tokens")
                changes[name] = tuple(str(token) for token in value)
        script = replace(base or cls(), **changes)
        script.check()
        return script

    def check(self) -> None:
        """Raise ``ValueError`` for a script the fake cannot follow."""
        shares = (self.share_429, self.share_503, self.share_500, self.share_timeout)
        if any(not 0 <= share <= 1 for share in shares) or sum(shares) > 1:
            raise ValueError("shares must be within 0..1 and add up to at most 1")
        if min(self.latency_s, self.hang_s, self.outage_after_s, self.outage_for_s) < 0:
            raise ValueError("durations must not be negative")
        if self.token_expires_in_s <= 0:
            raise ValueError("token_expires_in_s must be positive")
        if self.outage_kind not in ("503", "refuse"):
            raise ValueError("outage_kind is 503 or refuse")
        if self.error_mode not in (None, "SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"):
            raise ValueError("error_mode is SENDER_ID_MISMATCH, THIRD_PARTY_AUTH_ERROR or null")

    def to_json(self) -> dict[str, Any]:
        """The script as JSON-ready data (what ``GET /_fake/script`` shows)."""
        data = asdict(self)
        for name in ("unregistered_tokens", "invalid_tokens"):
            data[name] = list(data[name])
        return data


# --- FCM's answers -------------------------------------------------------------------------------


def fcm_error(
    code: int,
    status: str,
    message: str,
    *,
    error_code: str | None = None,
    violations: Sequence[tuple[str | None, str]] = (),
    details: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """An error body in the shape FCM HTTP v1 answers."""
    all_details: list[Mapping[str, Any]] = []
    if error_code is not None:
        all_details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    if violations:
        all_details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [
                    {"description": text} if name is None else {"field": name, "description": text}
                    for name, text in violations
                ],
            }
        )
    all_details.extend(details)
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if all_details:
        error["details"] = all_details
    return {"error": error}


def _error_info(reason: str) -> dict[str, Any]:
    return {
        "@type": ERROR_INFO_TYPE,
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {
            "service": "fcm.googleapis.com",
            "method": "google.firebase.fcm.v1.FcmService.SendMessage",
        },
    }


@dataclass(frozen=True)
class Invalid:
    """Why FCM would refuse a request body: the message and the offending fields."""

    message: str
    violations: tuple[tuple[str | None, str], ...] = ()
    #: Whether FCM adds its own ``FcmError`` INVALID_ARGUMENT detail.
    fcm_detail: bool = False

    def body(self) -> dict[str, Any]:
        """The 400 body for this problem."""
        return fcm_error(
            400,
            "INVALID_ARGUMENT",
            self.message,
            error_code="INVALID_ARGUMENT" if self.fcm_detail else None,
            violations=self.violations,
        )


def _bad_value(path: str, kind: str, value: object) -> Invalid:
    text = f"Invalid value at '{path}' ({kind}), {json.dumps(value)}"
    return Invalid(text, ((path, text),))


def _unknown(name: str, at: str | None) -> Invalid:
    where = f" at '{at}'" if at else ""
    text = f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'
    return Invalid(text, ((None, text),))


def check_send_body(body: object) -> Invalid | None:
    """What FCM would refuse in a ``messages:send`` body, or None if it is valid."""
    if not isinstance(body, dict):
        return Invalid("Invalid JSON payload received. Expected an object.")
    for name in body:
        if name not in ("message", "validate_only"):
            return _unknown(name, None)
    message = body.get("message")
    if not isinstance(message, dict):
        return Invalid("Request contains an invalid argument.", (("message", "required"),))
    for name in message:
        if name not in _MESSAGE_FIELDS:
            return _unknown(name, "message")
    targets = [name for name in ("token", "topic", "condition", "fid") if name in message]
    if not targets:
        return Invalid("Recipient of the message is not set.", fcm_detail=True)
    if len(targets) > 1:
        return Invalid(
            "Exactly one of token, topic, condition or fid must be set.", fcm_detail=True
        )
    target = targets[0]
    if not isinstance(message[target], str):
        return _bad_value(f"message.{target}", "TYPE_STRING", message[target])
    return (
        _check_notification(message.get("notification"))
        or _check_data(message.get("data"))
        or _check_android(message.get("android"))
        or _check_apns(message.get("apns"))
        or _check_size(message)
    )


def _check_strings(value: object, path: str, names: Iterable[str]) -> Invalid | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return _bad_value(path, "TYPE_MESSAGE", value)
    for name in names:
        if name in value and not isinstance(value[name], str):
            return _bad_value(f"{path}.{name}", "TYPE_STRING", value[name])
    return None


def _check_notification(value: object) -> Invalid | None:
    return _check_strings(value, "message.notification", ("title", "body", "image"))


def _check_data(value: object) -> Invalid | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return _bad_value("message.data", "TYPE_MESSAGE", value)
    for index, (key, item) in enumerate(value.items()):
        if not isinstance(item, str):
            return _bad_value(f"message.data[{index}].value", "TYPE_STRING", item)
        if key in _RESERVED_DATA_KEYS or key.startswith(("google", "gcm")):
            return Invalid(f"Invalid data payload key: {key}", fcm_detail=True)
    return None


def _check_android(value: object) -> Invalid | None:
    problem = _check_strings(value, "message.android", ("collapse_key", "priority", "ttl"))
    if problem or value is None:
        return problem
    android = cast(dict[str, Any], value)
    priority = android.get("priority")
    if priority is not None and str(priority).upper() not in ("NORMAL", "HIGH"):
        return _bad_value(
            "message.android.priority",
            "type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority",
            priority,
        )
    ttl = android.get("ttl")
    if ttl is not None:
        if not _DURATION.match(ttl):
            text = (
                "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf."
                "Duration), Field 'ttl', Illegal duration format; duration must end with 's'"
            )
            return Invalid(text, (("message.android.ttl", text),))
        if float(ttl[:-1]) > MAX_TTL_S:
            return Invalid("The ttl value is too large.", fcm_detail=True)
    return _check_strings(android.get("notification"), "message.android.notification", ("tag",))


def _check_apns(value: object) -> Invalid | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return _bad_value("message.apns", "TYPE_MESSAGE", value)
    headers = value.get("headers", {})
    if not isinstance(headers, dict):
        return _bad_value("message.apns.headers", "TYPE_MESSAGE", headers)
    for index, (name, item) in enumerate(headers.items()):
        if not isinstance(item, str):
            return _bad_value(f"message.apns.headers[{index}].value", "TYPE_STRING", item)
        lowered = name.lower()
        if lowered == "apns-collapse-id" and len(item.encode()) > COLLAPSE_KEY_MAX_BYTES:
            return Invalid(
                "Invalid apns-collapse-id: it must not exceed 64 bytes.", fcm_detail=True
            )
        if lowered == "apns-expiration" and not (item.isascii() and item.isdigit()):
            return Invalid(f"Invalid apns-expiration: {item!r}", fcm_detail=True)
        if lowered == "apns-priority" and item not in _APNS_PRIORITIES:
            return Invalid(f"Invalid apns-priority: {item!r}", fcm_detail=True)
        if lowered == "apns-push-type" and item not in _APNS_PUSH_TYPES:
            return Invalid(f"Invalid apns-push-type: {item!r}", fcm_detail=True)
    payload = value.get("payload")
    if payload is not None:
        if not isinstance(payload, dict):
            return _bad_value("message.apns.payload", "TYPE_MESSAGE", payload)
        if "aps" in payload and not isinstance(payload["aps"], dict):
            return Invalid("Invalid APNs payload: aps must be an object.", fcm_detail=True)
    return None


def _check_size(message: Mapping[str, Any]) -> Invalid | None:
    payload = {key: message[key] for key in ("notification", "data") if key in message}
    if len(json.dumps(payload, ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES:
        return Invalid("Message is too big.", fcm_detail=True)
    return None


# --- Records -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """One message the fake accepted."""

    at: float
    name: str
    project: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Attempt:
    """One ``messages:send`` request and how it was answered.

    ``status`` 0 means no answer: the connection was dropped or the request hung.
    """

    at: float
    token: str | None
    status: int
    error_code: str | None
    #: The request's ``message`` as sent (None if the body was not JSON).
    message: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Grant:
    account: ServiceAccount
    expires_at: float


# --- The server ----------------------------------------------------------------------------------


class FakeFcm:
    """The fake FCM server, used in-process by tests or run by :func:`main`."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        accounts: Iterable[ServiceAccount] = (),
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._host = host
        self._port = port
        self._keys: dict[tuple[str, str], Any] = {}
        for account in accounts:
            self.trust(account)
        self._script = script or Script()
        self._script.check()
        self._rng = random.Random(self._script.seed)
        self._script_set_at = time.monotonic()
        self._grants: dict[str, _Grant] = {}
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._closing = asyncio.Event()
        self._outage_timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener_lock = asyncio.Lock()
        self._message_ids = 0
        #: Every accepted message and every send attempt, oldest first.
        self.accepted: list[Accepted] = []
        self.attempts: list[Attempt] = []
        #: Token-endpoint requests, and the ones answered with an error.
        self.token_requests = 0
        self.token_failures = 0
        #: Send requests being answered now, and the most at once.
        self.concurrent = 0
        self.max_concurrent = 0

    # -- lifecycle --

    async def start(self) -> None:
        """Listen on the host and port (port 0: any free one; see :attr:`port`)."""
        app = web.Application()
        app.router.add_post("/token", self._token)
        app.router.add_post("/v1/projects/{project}/messages:send", self._send)
        app.router.add_get("/_fake/accepted", self._get_accepted)
        app.router.add_get("/_fake/attempts", self._get_attempts)
        app.router.add_get("/_fake/stats", self._get_stats)
        app.router.add_get("/_fake/script", self._get_script)
        app.router.add_post("/_fake/script", self._post_script)
        app.router.add_post("/_fake/revoke", self._post_revoke)
        app.router.add_post("/_fake/reset", self._post_reset)
        # Cancel a hanging handler as soon as its client gives up.
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await self._runner.setup()
        await self._listen()
        self._schedule_outage()

    async def close(self) -> None:
        """Stop listening and end every hanging request."""
        self._closing.set()
        for timer in self._outage_timers:
            timer.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> FakeFcm:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _listen(self) -> None:
        assert self._runner is not None
        async with self._listener_lock:
            if self._site is not None or self._closing.is_set():
                return
            site = web.TCPSite(self._runner, self._host, self._port)
            await site.start()
            self._site = site
            if self._port == 0:
                # Reopening after a refusing outage must use the same port.
                self._port = int(self._runner.addresses[0][1])

    async def _stop_listening(self) -> None:
        async with self._listener_lock:
            site, self._site = self._site, None
            if site is not None:
                await site.stop()

    @property
    def port(self) -> int:
        """The port listened on (known once started)."""
        return self._port

    @property
    def base_url(self) -> str:
        """What the sender's ``base_url`` should be."""
        return f"http://{self._host}:{self._port}"

    @property
    def token_uri(self) -> str:
        """What a service-account file's ``token_uri`` should be."""
        return f"{self.base_url}/token"

    # -- configuration --

    def trust(self, account: ServiceAccount) -> None:
        """Accept assertions signed with this account's key."""
        key = serialization.load_pem_public_key(account.public_key_pem.encode())
        self._keys[(account.client_email, account.private_key_id)] = (account, key)

    def write_service_account(
        self,
        path: str | os.PathLike[str],
        project_id: str = "fake-project",
        *,
        client_email: str | None = None,
        trusted: bool = True,
    ) -> ServiceAccount:
        """A fresh service-account file pointing at this fake, trusted unless told otherwise."""
        if self._port == 0:
            raise RuntimeError("start the fake first: the file needs its port")
        account = make_service_account(path, self.token_uri, project_id, client_email=client_email)
        if trusted:
            self.trust(account)
        return account

    @property
    def script(self) -> Script:
        """The script in force."""
        return self._script

    def set_script(self, script: Script | None = None, **changes: Any) -> Script:
        """Replace the script (or change some of its fields); restarts the outage clock."""
        new = Script.from_mapping(changes, base=script or self._script)
        self._script = new
        self._rng = random.Random(new.seed)
        self._script_set_at = time.monotonic()
        self._schedule_outage()
        return new

    def revoke_tokens(self) -> None:
        """Forget every issued access token: the next sends get 401 UNAUTHENTICATED."""
        self._grants.clear()

    def reset_records(self) -> None:
        """Forget what was accepted and attempted, and the counters."""
        self.accepted.clear()
        self.attempts.clear()
        self.token_requests = 0
        self.token_failures = 0
        self.max_concurrent = self.concurrent

    # -- the outage window --

    def _in_outage(self) -> bool:
        script = self._script
        if script.outage_for_s <= 0:
            return False
        elapsed = time.monotonic() - self._script_set_at
        return script.outage_after_s <= elapsed < script.outage_after_s + script.outage_for_s

    def _schedule_outage(self) -> None:
        for timer in self._outage_timers:
            timer.cancel()
        self._outage_timers = []
        if self._runner is None:
            return
        loop = asyncio.get_running_loop()
        script = self._script
        if script.outage_kind == "refuse" and script.outage_for_s > 0:
            start, end = script.outage_after_s, script.outage_after_s + script.outage_for_s
            self._outage_timers = [
                loop.call_later(start, self._spawn, self._stop_listening),
                loop.call_later(end, self._spawn, self._listen),
            ]
        else:
            # A new script ends a refusing outage at once.
            self._spawn(self._listen)

    def _spawn(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.get_running_loop().create_task(work())
        # The loop keeps only weak references to tasks.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the token endpoint --

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        grant_type = form.get("grant_type")
        if grant_type != JWT_BEARER_GRANT:
            shown = grant_type if isinstance(grant_type, str) else ""
            return self._token_error("unsupported_grant_type", f"Invalid grant_type: {shown}")
        assertion = form.get("assertion")
        if not isinstance(assertion, str) or not assertion:
            return self._token_error("invalid_request", "Missing required parameter: assertion")
        problem, account = self._verify_assertion(assertion)
        if problem is not None:
            return self._token_error(*problem)
        assert account is not None
        expires_in = self._script.token_expires_in_s
        access_token = f"fake-{secrets.token_urlsafe(24)}"
        self._grants[access_token] = _Grant(account, time.monotonic() + expires_in)
        return web.json_response(
            {
                # Google answers whole seconds; a short test token is rounded up.
                "access_token": access_token,
                "expires_in": max(1, round(expires_in)),
                "token_type": "Bearer",
            }
        )

    def _verify_assertion(
        self, assertion: str
    ) -> tuple[tuple[str, str] | None, ServiceAccount | None]:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return ("invalid_grant", "Invalid JWT."), None
        entry = self._keys.get((str(claims.get("iss")), str(header.get("kid"))))
        if entry is None:
            return ("invalid_grant", "Invalid JWT Signature."), None
        account, key = entry
        try:
            verified = jwt.decode(
                assertion,
                key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_URI, self.token_uri],
                issuer=account.client_email,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.InvalidSignatureError:
            return ("invalid_grant", "Invalid JWT Signature."), None
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError):
            return ("invalid_grant", _SHORT_LIVED), None
        except jwt.InvalidAudienceError:
            return ("invalid_grant", "Invalid JWT: Failed audience check."), None
        except jwt.PyJWTError as exc:
            return ("invalid_grant", f"Invalid JWT: {exc}"), None
        if float(verified["exp"]) - float(verified["iat"]) > 3600:
            return ("invalid_grant", _SHORT_LIVED), None
        scopes = str(verified["scope"]).split()
        if FCM_SCOPE not in scopes and CLOUD_PLATFORM_SCOPE not in scopes:
            return ("invalid_scope", "Invalid OAuth scope or ID token audience provided."), None
        return None, account

    def _token_error(self, error: str, description: str) -> web.Response:
        self.token_failures += 1
        return web.json_response({"error": error, "error_description": description}, status=400)

    # -- messages:send --

    async def _send(self, request: web.Request) -> web.StreamResponse:
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            return await self._answer(request, time.time())
        finally:
            self.concurrent -= 1

    async def _answer(self, request: web.Request, arrived: float) -> web.StreamResponse:
        script = self._script
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw)
        except ValueError:
            body = None
        message = body.get("message") if isinstance(body, dict) else None
        message = message if isinstance(message, dict) else None
        token = message.get("token") if message is not None else None
        token = token if isinstance(token, str) else None

        def answer(status: int, data: Mapping[str, Any], **headers: str) -> web.Response:
            error = data.get("error", {})
            codes = [d.get("errorCode") for d in error.get("details", ()) if "errorCode" in d]
            label = codes[0] if codes else error.get("status")
            self.attempts.append(Attempt(arrived, token, status, label, message))
            return web.json_response(data, status=status, headers=headers, dumps=_dumps)

        if self._in_outage() and script.outage_kind == "refuse":
            # A keep-alive connection survives the closed port: drop it too.
            self.attempts.append(Attempt(arrived, token, 0, "connection_dropped", message))
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        if script.latency_s:
            # A plain sleep: aiohttp cancels the handler if the fake closes meanwhile.
            await asyncio.sleep(script.latency_s)

        grant = self._authorized(request.headers.get("Authorization", ""))
        if grant is None:
            return answer(
                401,
                fcm_error(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access "
                    "token, login cookie or other valid authentication credential. See "
                    "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                    details=[_error_info("ACCESS_TOKEN_EXPIRED")],
                ),
                **{"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )
        project = request.match_info["project"]
        if project != grant.account.project_id:
            return answer(
                403,
                fcm_error(
                    403,
                    "PERMISSION_DENIED",
                    f"Permission 'cloudmessaging.messages.create' denied on resource "
                    f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                    "(or it may not exist).",
                    details=[_error_info("IAM_PERMISSION_DENIED")],
                ),
            )
        invalid = check_send_body(body)
        if invalid is not None:
            return answer(400, invalid.body())
        assert message is not None

        retry_after = {"Retry-After": script.retry_after} if script.retry_after else {}
        if self._in_outage():
            return answer(503, _unavailable(), **retry_after)
        if script.error_mode == "SENDER_ID_MISMATCH":
            return answer(
                403,
                fcm_error(
                    403, "PERMISSION_DENIED", "SenderId mismatch", error_code=script.error_mode
                ),
            )
        if script.error_mode == "THIRD_PARTY_AUTH_ERROR":
            return answer(
                401,
                fcm_error(
                    401,
                    "UNAUTHENTICATED",
                    "Auth error from APNS or Web Push Service",
                    error_code=script.error_mode,
                ),
            )

        draw = self._rng.random()
        if draw < script.share_timeout:
            # Recorded now: the client gives up first, and its leaving cancels this handler.
            self.attempts.append(Attempt(arrived, token, 0, "timeout", message))
            await self._pause(script.hang_s)
            return web.json_response(_unavailable(), status=503)
        draw -= script.share_timeout
        if draw < script.share_429:
            return answer(429, _quota_exceeded(project), **retry_after)
        draw -= script.share_429
        if draw < script.share_503:
            return answer(503, _unavailable())
        draw -= script.share_503
        if draw < script.share_500:
            return answer(
                500,
                fcm_error(500, "INTERNAL", "Internal error encountered.", error_code="INTERNAL"),
            )

        if token is not None and token in script.unregistered_tokens:
            return answer(
                404,
                fcm_error(
                    404, "NOT_FOUND", "Requested entity was not found.", error_code="UNREGISTERED"
                ),
            )
        if token is not None and token in script.invalid_tokens:
            return answer(
                400,
                fcm_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token",
                    error_code="INVALID_ARGUMENT",
                ),
            )

        if body.get("validate_only") is True:
            return answer(200, {"name": f"projects/{project}/messages/fake_message_id"})
        self._message_ids += 1
        name = f"projects/{project}/messages/{self._message_ids}"
        self.accepted.append(Accepted(arrived, name, project, message))
        return answer(200, {"name": name})

    def _authorized(self, authorization: str) -> _Grant | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        grant = self._grants.get(token.strip())
        if grant is None or time.monotonic() >= grant.expires_at:
            return None
        return grant

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the fake closes."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    # -- the control endpoints --

    async def _get_accepted(self, request: web.Request) -> web.Response:
        return web.json_response({"accepted": [asdict(a) for a in self.accepted]})

    async def _get_attempts(self, request: web.Request) -> web.Response:
        return web.json_response({"attempts": [asdict(a) for a in self.attempts]})

    async def _get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "accepted": len(self.accepted),
                "attempts": len(self.attempts),
                "token_requests": self.token_requests,
                "token_failures": self.token_failures,
                "concurrent": self.concurrent,
                "max_concurrent": self.max_concurrent,
            }
        )

    async def _get_script(self, request: web.Request) -> web.Response:
        return web.json_response(self._script.to_json())

    async def _post_script(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("the script is a JSON object")
            script = self.set_script(**changes)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(script.to_json())

    async def _post_revoke(self, request: web.Request) -> web.Response:
        self.revoke_tokens()
        return web.json_response({"revoked": True})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset_records()
        return web.json_response({"reset": True})


_SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _unavailable() -> dict[str, Any]:
    return fcm_error(
        503, "UNAVAILABLE", "The service is currently unavailable.", error_code="UNAVAILABLE"
    )


def _quota_exceeded(project: str) -> dict[str, Any]:
    return fcm_error(
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' "
        f"of service 'fcm.googleapis.com' for consumer 'project_number:{project}'.",
        error_code="QUOTA_EXCEEDED",
        details=[
            {
                "@type": QUOTA_FAILURE_TYPE,
                "violations": [{"subject": f"project_number:{project}"}],
            }
        ],
    )


# --- Command line --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m app.notify.fake_fcm`` (and of ``faust ... fake-fcm``)."""
    parser = argparse.ArgumentParser(
        prog="fake-fcm", description="A local fake of FCM HTTP v1 and Google's token endpoint."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--script", help="a JSON file with Script fields")
    parser.add_argument(
        "--service-account",
        action="append",
        default=[],
        metavar="PATH",
        help="trust this key file; created with a fresh key pointing here if missing",
    )
    parser.add_argument("--project-id", default="fake-project", help="for created key files")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--latency", type=float, dest="latency_s")
    parser.add_argument("--share-429", type=float)
    parser.add_argument("--share-503", type=float)
    parser.add_argument("--share-500", type=float)
    parser.add_argument("--share-timeout", type=float)
    parser.add_argument("--hang", type=float, dest="hang_s")
    parser.add_argument("--token-expires-in", type=float, dest="token_expires_in_s")
    parser.add_argument(
        "--unregistered", action="append", dest="unregistered_tokens", metavar="TOKEN"
    )
    parser.add_argument("--retry-after", help="Retry-After of 429s and outage 503s")
    parser.add_argument("--outage-after", type=float, dest="outage_after_s")
    parser.add_argument("--outage-for", type=float, dest="outage_for_s")
    parser.add_argument("--outage-kind", choices=("503", "refuse"))
    parser.add_argument("--error-mode", choices=("SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"))
    return parser


_SCRIPT_FLAGS = (
    "seed",
    "latency_s",
    "share_429",
    "share_503",
    "share_500",
    "share_timeout",
    "hang_s",
    "token_expires_in_s",
    "unregistered_tokens",
    "retry_after",
    "outage_after_s",
    "outage_for_s",
    "outage_kind",
    "error_mode",
)


def script_from_args(args: argparse.Namespace) -> Script:
    """The script of a command line: the ``--script`` file, then the flags over it."""
    script = Script()
    if args.script:
        with open(args.script, encoding="utf-8") as handle:
            script = Script.from_mapping(json.load(handle))
    flags = {name: getattr(args, name) for name in _SCRIPT_FLAGS if getattr(args, name) is not None}
    return Script.from_mapping(flags, base=script)


async def serve(
    script: Script,
    *,
    host: str = "127.0.0.1",
    port: int = 8099,
    service_accounts: Sequence[str] = (),
    project_id: str = "fake-project",
    stop: asyncio.Event | None = None,
) -> None:
    """Run the fake until ``stop`` is set (or SIGINT/SIGTERM when none is given)."""
    fake = FakeFcm(script, host=host, port=port)
    await fake.start()
    try:
        for path in service_accounts:
            if os.path.exists(path):
                fake.trust(read_service_account(path))
            else:
                fake.write_service_account(path, project_id)
        print(
            f"fake FCM on {fake.base_url} (token_uri {fake.token_uri}); "
            f"trusting {', '.join(service_accounts) or 'no key yet'}",
            flush=True,
        )
        if stop is None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await fake.close()


def run(
    script: Script,
    *,
    host: str = "127.0.0.1",
    port: int = 8099,
    service_accounts: Sequence[str] = (),
    project_id: str = "fake-project",
) -> None:
    """Run the fake in the foreground until interrupted (for CLI commands)."""
    asyncio.run(
        serve(
            script,
            host=host,
            port=port,
            service_accounts=service_accounts,
            project_id=project_id,
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m app.notify.fake_fcm [--port N] ...``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        script = script_from_args(args)
    except (OSError, ValueError, TypeError) as exc:
        parser.error(str(exc))
    run(
        script,
        host=args.host,
        port=args.port,
        service_accounts=args.service_account,
        project_id=args.project_id,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
