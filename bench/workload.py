"""The benchmark's records, and what the worker must write for them (pure).

Tokens: ``tokens`` registrations round robin over ``users`` known users, so
every user gets ``tokens // users`` devices (one more for the first
``tokens % users``).  Payments: a realistic mix of failures, unknown users,
re-sent duplicates and records keyed by payment id instead of user id.  The
same seed gives the same records, so the expected log lines are exact.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace

CURRENCIES = ("RUB", "EUR", "USD")
FAILURE_REASONS = ("insufficient funds", "card expired", "declined by bank", "limit exceeded")
#: Ids of users nobody registered start here: far above any known user.
UNKNOWN_USER_BASE = 1_000_000_000
#: Duplicates re-send one of this many most recent payments.
DUPLICATE_WINDOW = 1_000


@dataclass(frozen=True)
class Mix:
    """Shares of the payment stream (each between 0 and 1)."""

    failed: float = 0.20
    unknown: float = 0.05
    duplicates: float = 0.05
    keyed_by_payment: float = 0.5


@dataclass(frozen=True)
class PaymentRecord:
    """One payment on the topic, and what the worker must do with it."""

    key: bytes
    value: bytes
    payment_id: str
    #: Devices the worker notifies (0: an unknown user, one "not notified" line).
    devices: int
    duplicate: bool = False
    failed: bool = False
    keyed_by_payment: bool = False


@dataclass
class Expected:
    """Running totals of a payment stream: the log lines it must produce."""

    payments: int = 0
    duplicates: int = 0
    failed: int = 0
    keyed_by_payment: int = 0
    #: ``send notification ...`` lines (duplicates are suppressed by design).
    notifications: int = 0
    #: ``no push token for user U: payment P (...) not notified`` lines.
    without_token: int = 0

    def add(self, record: PaymentRecord) -> None:
        """Count ``record``."""
        self.payments += 1
        self.keyed_by_payment += record.keyed_by_payment
        if record.duplicate:
            self.duplicates += 1
            return
        self.failed += record.failed
        if record.devices:
            self.notifications += record.devices
        else:
            self.without_token += 1


def known_user(index: int) -> int:
    """The id of the ``index``-th known user (0-based); ids start at 1."""
    return index + 1


def devices_of(user_index: int, tokens: int, users: int) -> int:
    """How many devices :func:`token_records` registers for the ``user_index``-th user."""
    return tokens // users + (1 if user_index < tokens % users else 0)


def fake_fcm_token(rng: random.Random) -> str:
    """A token shaped like a Firebase registration token (~160 characters)."""
    return f"{rng.getrandbits(88):022x}:APA91b{rng.getrandbits(512):0128x}"


def token_records(tokens: int, users: int, seed: int) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` registrations, keyed by user id as the API produces them."""
    rng = random.Random(seed)
    for i in range(tokens):
        user = known_user(i % users)
        value = {
            "user_id": user,
            "device_id": f"device-{i // users}",
            "token": fake_fcm_token(rng),
            "platform": "ios" if rng.random() < 0.4 else "android",
            "updated_at": _iso_plus_ms(i),
        }
        yield str(user).encode(), _json(value)


def payment_records(
    count: int, *, tokens: int, users: int, seed: int, mix: Mix, tag: str
) -> Iterator[PaymentRecord]:
    """``count`` payments with ids ``bp-<tag>-<n>``; see :class:`Mix` for the shares."""
    rng = random.Random(seed)
    recent: list[PaymentRecord] = []
    for i in range(count):
        if recent and rng.random() < mix.duplicates:
            original = rng.choice(recent)
            by_payment = rng.random() < mix.keyed_by_payment
            yield replace(
                original,
                key=_key(original.payment_id, original.value, by_payment),
                duplicate=True,
                keyed_by_payment=by_payment,
            )
            continue
        record = _new_payment(rng, i, tokens=tokens, users=users, mix=mix, tag=tag)
        if len(recent) < DUPLICATE_WINDOW:
            recent.append(record)
        else:
            recent[i % DUPLICATE_WINDOW] = record
        yield record


def payment_index(payment_id: str) -> int:
    """``n`` of a payment id ``bp-<tag>-<n>``."""
    return int(payment_id.rsplit("-", 1)[1])


def _new_payment(
    rng: random.Random, i: int, *, tokens: int, users: int, mix: Mix, tag: str
) -> PaymentRecord:
    payment_id = f"bp-{tag}-{i}"
    if rng.random() < mix.unknown:
        user, devices = UNKNOWN_USER_BASE + i, 0
    else:
        index = rng.randrange(users)
        user, devices = known_user(index), devices_of(index, tokens, users)
    value: dict[str, object] = {
        "payment_id": payment_id,
        "user_id": user,
        "status": "succeeded",
        "amount": f"{rng.randrange(100, 10_000_000) / 100:.2f}",
        "currency": rng.choice(CURRENCIES),
    }
    failed = rng.random() < mix.failed
    if failed:
        value["status"] = "failed"
        value["reason"] = rng.choice(FAILURE_REASONS)
    by_payment = rng.random() < mix.keyed_by_payment
    raw = _json(value)
    return PaymentRecord(
        key=payment_id.encode() if by_payment else str(user).encode(),
        value=raw,
        payment_id=payment_id,
        devices=devices,
        failed=failed,
        keyed_by_payment=by_payment,
    )


def _key(payment_id: str, value: bytes, by_payment: bool) -> bytes:
    if by_payment:
        return payment_id.encode()
    return str(json.loads(value)["user_id"]).encode()


def _json(value: dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _iso_plus_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    # One millisecond apart from 2026-01-01: distinct, ordered, valid for ~2.6e9 tokens.
    return f"2026-01-{1 + days:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}+00:00"
