"""The contract of a sender: what the join hands over, and what it expects back.

A :class:`Sender` takes :class:`Delivery` records (one device, one rendered
message) and answers one :class:`Outcome` per delivery.  The outcome says what
the caller does next; the sender itself never retries across calls, prunes a
token or writes to Kafka, so those stay in the stream processing where they can
be made durable.

Everything here is stdlib only and free of I/O: the classification of an FCM
HTTP v1 answer, ``Retry-After`` parsing, the retry backoff and the collapse key
are plain functions, tested without a network.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol, runtime_checkable

OutcomeKind = Literal["delivered", "retry", "token_gone", "rejected", "misconfigured"]
#: Every outcome kind, for metrics that pre-create their label sets.
OUTCOME_KINDS: tuple[OutcomeKind, ...] = (
    "delivered",
    "retry",
    "token_gone",
    "rejected",
    "misconfigured",
)

#: The ``@type`` of the detail that carries FCM's own error code.
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
#: The ``@type`` of the detail that lists the request fields FCM found wrong.
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"

#: Bounds for a server's ``Retry-After``: FCM asks for at least 10 s before a
#: retry, and a longer wait than an hour outlives any payment notification.
RETRY_AFTER_MIN_S = 10.0
RETRY_AFTER_MAX_S = 3600.0

#: APNs refuses an ``apns-collapse-id`` longer than this (in UTF-8 bytes).
COLLAPSE_KEY_MAX_BYTES = 64

_ERROR_TEXT_MAX = 300


# Not frozen: a frozen dataclass of this size costs six times as much to
# build, once per notification.  Nothing changes a delivery after it is made;
# with_deadline() makes a new one.
@dataclass(slots=True)
class Delivery:
    """One notification to one device.

    ``expires_at`` (UNIX seconds) is the deadline after which the notification
    is worthless.  The caller fixes it once, before the first attempt (see
    :func:`with_deadline`), and passes the same delivery on every retry, so
    each attempt builds a byte-identical request.  ``None`` lets the sender
    take ``now + ttl`` at each send, which suits a single attempt only.
    """

    user_id: str
    device_id: str
    # Kept out of repr(): a logged delivery must not leak the token.
    token: str = field(repr=False)
    platform: str | None
    title: str
    body: str
    payment_id: str
    status: str
    amount: str
    currency: str
    expires_at: float | None = None


def with_deadline(delivery: Delivery, *, now: float, ttl_s: float) -> Delivery:
    """``delivery`` with ``expires_at = now + ttl_s``, unless it already has one."""
    if delivery.expires_at is not None:
        return delivery
    return replace(delivery, expires_at=now + ttl_s)


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery, and so what the caller does next.

    - ``delivered``: the provider accepted it.
    - ``retry``: try again later, after ``after_s`` seconds when the provider
      said so (already clamped), else after :func:`next_delay`.
    - ``token_gone``: the token will never work again: unregister the device.
    - ``rejected``: this message cannot be sent (our payload, or its deadline
      passed): drop it, keep the token.
    - ``misconfigured``: our credentials or project are wrong: alert, keep the
      token, and expect every other delivery to fail the same way.

    ``error_code`` is FCM's ``errorCode`` (or its canonical ``status`` when the
    answer has no FCM detail) or a short label such as ``timeout``;
    ``error`` is a short human text that never contains the device token.
    """

    kind: OutcomeKind
    after_s: float | None = None
    error_code: str | None = None
    error: str | None = None
    #: The provider's id of an accepted message (FCM's ``name``).
    message_id: str | None = None

    @classmethod
    def delivered(cls, message_id: str | None = None) -> Outcome:
        """The provider accepted the message."""
        return cls("delivered", message_id=message_id)

    @classmethod
    def retry(
        cls, error_code: str, error: str | None = None, *, after_s: float | None = None
    ) -> Outcome:
        """A transient failure: send the same delivery again later."""
        return cls("retry", after_s=after_s, error_code=error_code, error=error)

    @classmethod
    def token_gone(cls, error_code: str, error: str | None = None) -> Outcome:
        """The device's token is dead for good."""
        return cls("token_gone", error_code=error_code, error=error)

    @classmethod
    def rejected(cls, error_code: str, error: str | None = None) -> Outcome:
        """This message cannot be sent; the token is fine."""
        return cls("rejected", error_code=error_code, error=error)

    @classmethod
    def misconfigured(cls, error_code: str, error: str | None = None) -> Outcome:
        """Our side of the connection is set up wrong."""
        return cls("misconfigured", error_code=error_code, error=error)

    @property
    def ok(self) -> bool:
        """Whether the message was delivered."""
        return self.kind == "delivered"


@runtime_checkable
class Sender(Protocol):
    """Delivers notifications to devices through one provider."""

    @property
    def name(self) -> str:
        """A short label for logs and metrics (``log``, ``fcm``)."""
        ...

    async def start(self) -> None:
        """Open connections and check the configuration; raise if it is unusable."""
        ...

    async def close(self) -> None:
        """Release connections; ``send`` must not be called afterwards."""
        ...

    async def send(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """One outcome per delivery, in the same order; never raises for a failed push."""
        ...


class SenderObserver(Protocol):
    """What a sender reports for metrics; the implementation lives with the metrics."""

    def on_outcome(self, sender: str, outcome: Outcome, duration_s: float) -> None:
        """One delivery finished (``duration_s`` covers a credential refresh and its retry)."""
        ...

    def on_in_flight(self, sender: str, in_flight: int) -> None:
        """The number of requests to the provider changed."""
        ...

    def on_credential_refresh(
        self, sender: str, result: Literal["ok", "error"], duration_s: float
    ) -> None:
        """One access-token refresh ended."""
        ...


class NullObserver:
    """A :class:`SenderObserver` that records nothing."""

    def on_outcome(self, sender: str, outcome: Outcome, duration_s: float) -> None:
        """Ignore the outcome."""

    def on_in_flight(self, sender: str, in_flight: int) -> None:
        """Ignore the count."""

    def on_credential_refresh(
        self, sender: str, result: Literal["ok", "error"], duration_s: float
    ) -> None:
        """Ignore the refresh."""


# --- FCM HTTP v1 answers -------------------------------------------------------------------------


@dataclass(frozen=True)
class FcmError:
    """The parts of an FCM error body that classification looks at."""

    #: The canonical status at the top (``NOT_FOUND``, ``INVALID_ARGUMENT``, ...).
    status: str | None = None
    message: str | None = None
    #: ``errorCode`` of the ``FcmError`` detail, if the body has one.
    error_code: str | None = None
    #: ``field`` of every ``google.rpc.BadRequest`` field violation.
    bad_fields: tuple[str, ...] = ()


def parse_fcm_error(body: object) -> FcmError:
    """Read an FCM error body; anything malformed reads as empty parts."""
    if not isinstance(body, Mapping):
        return FcmError()
    error = body.get("error")
    if not isinstance(error, Mapping):
        return FcmError()
    status = error.get("status")
    message = error.get("message")
    error_code: str | None = None
    bad_fields: list[str] = []
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, Mapping):
            continue
        kind = detail.get("@type")
        if kind == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            error_code = error_code or detail["errorCode"]
        elif kind == BAD_REQUEST_TYPE:
            violations = detail.get("fieldViolations")
            for violation in violations if isinstance(violations, list) else ():
                if isinstance(violation, Mapping) and isinstance(violation.get("field"), str):
                    bad_fields.append(violation["field"])
    return FcmError(
        status=status if isinstance(status, str) else None,
        message=message if isinstance(message, str) else None,
        error_code=error_code,
        bad_fields=tuple(bad_fields),
    )


def says_token_invalid(error: FcmError) -> bool:
    """Whether an ``INVALID_ARGUMENT`` blames the registration token, not our payload.

    FCM answers a malformed token with an ``FcmError`` ``INVALID_ARGUMENT`` and
    the message "The registration token is not a valid FCM registration token";
    a payload error has the same code, so the message decides.  A field
    violation on anything but ``message.token`` means the payload is (also) wrong,
    and a wrong payload must never cost a user their token.
    """
    if error.error_code != "INVALID_ARGUMENT" or not error.message:
        return False
    text = error.message.lower()
    if "registration token" not in text or not ("not a valid" in text or "invalid" in text):
        return False
    return all(name == "message.token" for name in error.bad_fields)


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, looked up without regard to case."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date).

    ``None`` when absent or unreadable; a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; a zone-less one is read the same way.
        return None
    return max(0.0, when.timestamp() - now)


def clamp_retry_after(
    seconds: float, *, low: float = RETRY_AFTER_MIN_S, high: float = RETRY_AFTER_MAX_S
) -> float:
    """``seconds`` bounded to ``[low, high]``."""
    return min(high, max(low, seconds))


def next_delay(
    attempt: int,
    rng: random.Random,
    *,
    base_s: float = RETRY_AFTER_MIN_S,
    cap_s: float = RETRY_AFTER_MAX_S,
    min_s: float = RETRY_AFTER_MIN_S,
) -> float:
    """The wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    Full jitter over an exponentially growing window: a uniform draw from
    ``[min_s, min(cap_s, base_s * 2 ** (attempt + 1))]``.  The draw spreads
    the retries of many deliveries that failed together; the floor keeps to
    FCM's "wait at least 10 seconds" and the cap bounds the worst case.
    """
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    # 2 ** 64 already dwarfs any cap; larger exponents only risk OverflowError.
    window = base_s * math.ldexp(1.0, min(attempt + 1, 64))
    high = max(min_s, min(cap_s, window))
    return rng.uniform(min_s, high)


def short_text(text: str | None, *, secret: str | None = None) -> str | None:
    """``text`` cut to a few hundred characters, with ``secret`` blanked out."""
    if text is None:
        return None
    if secret:
        text = text.replace(secret, "<token>")
    if len(text) > _ERROR_TEXT_MAX:
        text = text[: _ERROR_TEXT_MAX - 3] + "..."
    return text


#: FCM error codes that are a configuration problem, whatever the HTTP status.
_MISCONFIGURED_CODES = frozenset({"SENDER_ID_MISMATCH", "THIRD_PARTY_AUTH_ERROR"})
_RETRY_CODES = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})


def classify_fcm_response(
    status: int, headers: Mapping[str, str], body: object, *, now: float
) -> Outcome:
    """The outcome of one FCM HTTP v1 ``messages:send`` answer.

    The ``FcmError`` detail's ``errorCode`` decides first, because the
    top-level status is only the canonical code (``NOT_FOUND`` for an
    unregistered token, ``UNAUTHENTICATED`` for both our own expired OAuth token
    and the APNs certificate in the Firebase console).  Without that detail the
    HTTP status decides, and a 404 without ``UNREGISTERED`` (a wrong project or
    base URL) is a configuration problem: such an answer never prunes a token.

    A 401/403 without an FCM code classifies as ``misconfigured``; the sender
    refreshes its credential once before it believes that
    (:func:`wants_credential_refresh`).
    """
    if 200 <= status < 300:
        name = body.get("name") if isinstance(body, Mapping) else None
        return Outcome.delivered(name if isinstance(name, str) else None)

    error = parse_fcm_error(body)
    code = error.error_code
    label = code or error.status or f"HTTP_{status}"
    text = short_text(error.message) or f"HTTP {status}"

    if code == "UNREGISTERED":
        return Outcome.token_gone(code, text)
    if code == "INVALID_ARGUMENT":
        if says_token_invalid(error):
            return Outcome.token_gone(code, text)
        return Outcome.rejected(code, text)
    if code in _MISCONFIGURED_CODES:
        return Outcome.misconfigured(label, text)
    if code in _RETRY_CODES or status == 429 or status >= 500 or status == 408:
        after = parse_retry_after(header(headers, "Retry-After"), now=now)
        return Outcome.retry(
            label, text, after_s=None if after is None else clamp_retry_after(after)
        )
    if status in (401, 403, 404):
        return Outcome.misconfigured(label, text)
    return Outcome.rejected(label, text)


def wants_credential_refresh(status: int, outcome: Outcome) -> bool:
    """Whether a fresh access token might turn this answer into a success.

    A 401/403 that FCM pins on the APNs credentials or on a token from another
    project does not depend on our OAuth token, so a refresh would not help.
    """
    return (
        status in (401, 403)
        and outcome.kind == "misconfigured"
        and outcome.error_code not in _MISCONFIGURED_CODES
    )


# --- Replacing a notification on the phone -------------------------------------------------------


def collapse_key(payment_id: str, status: str) -> str:
    """A stable key for one payment outcome, at most 64 bytes, used as tag and collapse id.

    Two sends of the same (payment, status) carry the same key, so the phone
    replaces the first notification with the second instead of showing both.
    A key that would be too long (or not plain ASCII) becomes a hash of the pair.
    """
    readable = f"pay:{payment_id}:{status}"
    if readable.isascii() and len(readable) <= COLLAPSE_KEY_MAX_BYTES:
        return readable
    digest = hashlib.sha256(f"{payment_id}\x00{status}".encode()).hexdigest()
    return f"pay:{digest[:40]}"
