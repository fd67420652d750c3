"""The records that travel on the topics, and how raw input becomes one.

Everything here is pure: no Kafka, no Faust.  The HTTP API and the agents use
the same parsers, so a record that the API would refuse is also refused (and
not half-processed) when another team's service produces it directly.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_USER_ID_CHARS = 256
MAX_DEVICE_ID_CHARS = 256
MAX_TOKEN_CHARS = 4096
MAX_PLATFORM_CHARS = 32
MAX_PAYMENT_ID_CHARS = 256
MAX_REASON_CHARS = 1024
DEFAULT_DEVICE_ID = "default"
STATUSES = ("succeeded", "failed")


class InvalidRecord(ValueError):
    """Input that can never become a valid record.

    ``str(exc)`` says why, for people; ``code`` is a short, fixed category for
    metrics labels and dead-letter filtering.
    """

    def __init__(self, message: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.code = code


# Records are not frozen dataclasses: one is built per consumed record, and a
# frozen one costs several times as much to build.  Nothing changes them.
@dataclass(slots=True)
class TokenEvent:
    """A device's push token was registered (``token`` set) or removed (``None``).

    A removal with ``failed_token`` comes from the worker itself: the provider
    said that token is gone (``reason``), and it removes the device only if
    the device still holds that token.
    """

    user_id: str
    device_id: str
    token: str | None
    platform: str | None
    updated_at: str
    failed_token: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The value written to the tokens topic."""
        value: dict[str, Any] = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "token": self.token,
            "platform": self.platform,
            "updated_at": self.updated_at,
        }
        if self.failed_token is not None:
            value["failed_token"] = self.failed_token
        if self.reason is not None:
            value["reason"] = self.reason
        return value


@dataclass(slots=True)
class Payment:
    """A payment outcome published by the payments system."""

    payment_id: str
    user_id: str
    status: str
    amount: Decimal
    currency: str
    reason: str | None = None
    occurred_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON object that :func:`parse_payment` reads back into an equal payment."""
        return {
            "payment_id": self.payment_id,
            "user_id": self.user_id,
            "status": self.status,
            "amount": str(self.amount),
            "currency": self.currency,
            "reason": self.reason,
            "occurred_at": self.occurred_at,
        }


def _decimal_json(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def decode_json(
    raw: bytes | None, max_bytes: int, loads: Callable[[str], Any] = _decimal_json
) -> Any:
    """Decode a record value; numbers with a fraction become ``Decimal``.

    ``loads`` may be a faster decoder, if it gives the same values and
    raises ``ValueError`` where the standard one does.
    """
    if raw is None:
        raise InvalidRecord("value is empty (null record)", "null_value")
    if len(raw) > max_bytes:
        raise InvalidRecord(
            f"value is {len(raw)} bytes, over the {max_bytes} byte limit", "too_large"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord(f"value is not valid UTF-8 ({exc.reason})", "not_utf8") from None
    try:
        return loads(text)
    except ValueError as exc:
        raise InvalidRecord(f"value is not valid JSON ({exc})", "not_json") from None


def normalize_user_id(value: object) -> str:
    """One string per user: ``42`` and ``"42"`` (or ``" 42 "``) are the same user."""
    # bool is an int in Python, and True is not a user.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRecord("user_id must be a string or an integer", "bad_user_id")
    try:
        return _text_field("user_id", str(value), MAX_USER_ID_CHARS)
    except InvalidRecord as exc:
        raise InvalidRecord(str(exc), "bad_user_id") from None


def parse_token_event(
    data: object, *, now: datetime | None = None, stamp: str | None = None
) -> TokenEvent:
    """Validate a registration (or, with ``"token": null``, a removal).

    A record without ``updated_at`` is stamped with ``stamp`` (an ISO 8601
    time as :func:`iso_utc` gives), else with ``now``: the join passes the
    record's Kafka timestamp, so its event time never depends on when it is
    processed; the API and the CLI stamp their own registrations.
    """
    obj = _object(data)
    user_id = normalize_user_id(obj.get("user_id"))
    if "token" not in obj:
        raise InvalidRecord("token is required (use null to remove a device)", "missing_field")
    raw_token = obj["token"]
    token = None if raw_token is None else _string("token", raw_token, MAX_TOKEN_CHARS)
    device_id = _optional_string("device_id", obj.get("device_id"), MAX_DEVICE_ID_CHARS)
    platform = _optional_string("platform", obj.get("platform"), MAX_PLATFORM_CHARS)
    failed_token = _optional_string("failed_token", obj.get("failed_token"), MAX_TOKEN_CHARS)
    if failed_token is not None and token is not None:
        raise InvalidRecord("failed_token only goes with a removal (token null)")
    reason = _optional_string("reason", obj.get("reason"), MAX_REASON_CHARS)
    # A removal the worker itself produced says when the provider answered.
    updated_at = obj.get("updated_at", obj.get("observed_at"))
    if updated_at is None:
        if stamp is not None:
            updated_at = stamp
        else:
            moment = now or datetime.now(timezone.utc)
            updated_at = moment.isoformat(timespec="milliseconds")
    else:
        updated_at = _timestamp("updated_at", updated_at)
    return TokenEvent(
        user_id=user_id,
        device_id=device_id or DEFAULT_DEVICE_ID,
        token=token,
        platform=platform,
        updated_at=updated_at,
        failed_token=failed_token,
        reason=reason,
    )


def parse_payment(data: object) -> Payment:
    """Validate a payment event from the payments topic."""
    obj = _object(data)
    payment_id = _string("payment_id", obj.get("payment_id"), MAX_PAYMENT_ID_CHARS)
    user_id = normalize_user_id(obj.get("user_id"))
    status = obj.get("status")
    if status is None:
        raise InvalidRecord("status is required", "missing_field")
    if status not in STATUSES:
        raise InvalidRecord(
            f"status must be one of {', '.join(STATUSES)}, got {status!r}", "unknown_status"
        )
    amount = _amount(obj.get("amount"))
    currency = _currency(obj.get("currency"))
    reason = _optional_string("reason", obj.get("reason"), MAX_REASON_CHARS)
    occurred_at = obj.get("occurred_at")
    if occurred_at is not None:
        occurred_at = _timestamp("occurred_at", occurred_at)
    return Payment(
        payment_id=payment_id,
        user_id=user_id,
        status=status,
        amount=amount,
        currency=currency,
        reason=reason,
        occurred_at=occurred_at,
    )


def iso_utc(epoch_ms: int) -> str:
    """``epoch_ms`` as the ISO 8601 UTC text the records carry (milliseconds)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, timezone.utc)
    return moment.isoformat(timespec="milliseconds")


def _object(data: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidRecord("value must be a JSON object", "not_object")
    return data


def _string(name: str, value: object, limit: int) -> str:
    if value is None:
        raise InvalidRecord(f"{name} is required", "missing_field")
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be a string", "wrong_type")
    return _text_field(name, value, limit)


def _optional_string(name: str, value: object, limit: int) -> str | None:
    return None if value is None else _string(name, value, limit)


# Exactly Unicode category Cc, as one C-level scan instead of a lookup per character.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _text_field(name: str, value: str, limit: int) -> str:
    # The limits hold for the value as sent (as the API's document says), and
    # only then is it trimmed: a newline is refused, not quietly cut off.
    if len(value) > limit:
        raise InvalidRecord(f"{name} is {len(value)} characters, over the limit of {limit}")
    if _CONTROL.search(value):
        raise InvalidRecord(f"{name} must not contain control characters")
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        raise InvalidRecord(f"{name} must not be empty")
    return text


def _amount(value: object) -> Decimal:
    if value is None:
        raise InvalidRecord("amount is required", "missing_field")
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        raise InvalidRecord("amount must be a decimal string or a number")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidRecord(f"amount {value!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidRecord(f"amount must be a finite number >= 0, got {value!r}")
    if amount.adjusted() > 15:
        raise InvalidRecord("amount is too large")
    return amount


def _currency(value: object) -> str:
    if value is None:
        raise InvalidRecord("currency is required", "missing_field")
    if not isinstance(value, str):
        raise InvalidRecord("currency must be a string")
    code = value.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidRecord(f"currency must be a 3-letter ISO 4217 code, got {value!r}")
    return code


def _timestamp(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidRecord(f"{name} must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRecord(f"{name} {value!r} is not an ISO 8601 timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
