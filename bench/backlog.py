"""The backlog scenario: tokens and payments both waiting in their topics (pure).

Unlike the join phase (tokens applied first, payments produced later), here
every record is in Kafka before the consumer starts, so it reads both topics
at once.  The lines it must write follow event time: a payment notifies every
device its user had registered, and not removed, at or before the payment's
event time, plus the devices registered after it within the late-token grace.

The workload keeps that exact and cheap to compute: registrations round robin
over the users (as :func:`bench.workload.token_records`), then a share of the
devices removed and a share given a new token, then the payments (the join's
mix, with ``occurred_at``).  Every record's Kafka timestamp is its event time
(``updated_at``, or when a payment was sent; a re-sent payment keeps its
``occurred_at``), one millisecond apart, all before the payments' first.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone

from app.domain.messages import notification_line, render_message
from app.domain.records import Payment, decode_json, parse_payment
from bench.workload import Mix, PaymentRecord, fake_fcm_token, known_user, payment_records

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_RECORD_BYTES = 64 * 1024
#: Event time between the last token change and the first payment.
GAP_MS = 1_000


@dataclass(frozen=True)
class TokenChange:
    """One record of the tokens topic: a registration, a new token, or a removal (``None``)."""

    at_ms: int
    user: str
    device_id: str
    token: str | None
    platform: str

    def record(self) -> tuple[bytes, bytes, int]:
        """``(key, value, Kafka timestamp)``, keyed by user id as the API produces them."""
        value: dict[str, object] = {
            "user_id": int(self.user) if self.user.isdigit() else self.user,
            "device_id": self.device_id,
            "token": self.token,
            "platform": self.platform,
            "updated_at": iso_ms(self.at_ms),
        }
        return self.user.encode(), _json(value), self.at_ms


@dataclass(frozen=True)
class TimedPayment:
    """A payment of the backlog with its event time and its Kafka timestamp."""

    record: PaymentRecord
    #: ``occurred_at``: a re-sent payment keeps the original's.
    at_ms: int
    #: When it was sent: a re-send is later than its original.
    timestamp_ms: int


def iso_ms(at_ms: int) -> str:
    """``at_ms`` (epoch ms) as ISO 8601 UTC with milliseconds; exact, no float."""
    return (EPOCH + timedelta(milliseconds=at_ms)).isoformat(timespec="milliseconds")


def token_changes(
    tokens: int,
    users: int,
    seed: int,
    start_ms: int,
    removed: float = 0.05,
    refreshed: float = 0.05,
) -> list[TokenChange]:
    """Registrations, then removals and new tokens for a share of the devices.

    ``tokens`` registrations over ``users`` (the ``i``-th is device
    ``device-<i // users>`` of the ``i % users``-th user), one millisecond
    apart from ``start_ms``; then each device is removed with probability
    ``removed`` or given a new token with probability ``refreshed``, again one
    millisecond apart.
    """
    if not 0 <= removed + refreshed <= 1:
        raise ValueError("removed + refreshed must be a share between 0 and 1")
    rng = random.Random(seed)
    registered: list[TokenChange] = []
    for i in range(tokens):
        registered.append(
            TokenChange(
                at_ms=start_ms + i,
                user=str(known_user(i % users)),
                device_id=f"device-{i // users}",
                token=fake_fcm_token(rng),
                platform="ios" if rng.random() < 0.4 else "android",
            )
        )
    changes: list[TokenChange] = []
    at = start_ms + tokens
    for device in registered:
        draw = rng.random()
        if draw < removed:
            changes.append(replace(device, at_ms=at, token=None))
        elif draw < removed + refreshed:
            changes.append(replace(device, at_ms=at, token=fake_fcm_token(rng)))
        else:
            continue
        at += 1
    return registered + changes


def payments_start_ms(changes: list[TokenChange]) -> int:
    """Event time of the first payment: :data:`GAP_MS` after the last token change."""
    return max((c.at_ms for c in changes), default=0) + GAP_MS


def backlog_span_ms(tokens: int, payments: int) -> int:
    """An upper bound of the event-time span of a backlog of this size."""
    return 2 * tokens + GAP_MS + payments


def timed_payments(
    count: int, *, tokens: int, users: int, seed: int, mix: Mix, start_ms: int
) -> Iterator[TimedPayment]:
    """The join's payment mix (ids ``bp-backlog-<n>``), one millisecond apart from ``start_ms``.

    The ``n``-th payment happened at ``start_ms + n``; a re-send of it is sent
    later with the same value, so the same ``occurred_at``.
    """
    records = payment_records(count, tokens=tokens, users=users, seed=seed, mix=mix, tag="backlog")
    for sent, record in enumerate(records):
        index = int(record.payment_id.rsplit("-", 1)[1])
        at = start_ms + index
        value = json.loads(record.value)
        value["occurred_at"] = iso_ms(at)
        yield TimedPayment(replace(record, value=_json(value)), at, start_ms + sent)


class DeviceHistory:
    """Every user's token changes in event time, to answer which devices a payment reaches."""

    def __init__(self, changes: Iterable[TokenChange]) -> None:
        by_user: dict[str, list[TokenChange]] = {}
        for change in changes:
            by_user.setdefault(change.user, []).append(change)
        # Stable: changes at the same millisecond keep their topic order.
        self._by_user = {u: sorted(c, key=lambda c: c.at_ms) for u, c in by_user.items()}

    def deliveries(self, user: str, at_ms: int, grace_ms: int) -> list[tuple[str, str]]:
        """``(device_id, token)`` a payment of ``user`` at ``at_ms`` must notify.

        The devices registered (and not removed) at or before ``at_ms``, with
        their token then; then each device first registered after it, up to
        ``at_ms + grace_ms``, with that registration's token.
        """
        devices: dict[str, str] = {}
        late: dict[str, str] = {}
        for change in self._by_user.get(user, ()):
            if change.at_ms <= at_ms:
                if change.token is None:
                    devices.pop(change.device_id, None)
                else:
                    devices[change.device_id] = change.token
            elif change.at_ms > at_ms + grace_ms:
                break
            elif change.token is not None and change.device_id not in devices:
                late.setdefault(change.device_id, change.token)
        return sorted(devices.items()) + sorted(late.items())


def expected_deliveries(
    history: DeviceHistory, payments: Iterable[TimedPayment], grace_ms: int
) -> Iterator[tuple[Payment, list[tuple[str, str]]]]:
    """Each payment outcome, once, with the devices it must notify (maybe none).

    A re-sent payment (same id and status) notifies nothing more: it has its
    original's value, so its event time and its devices.
    """
    for timed in payments:
        if timed.record.duplicate:
            continue
        payment = parse_payment(decode_json(timed.record.value, MAX_RECORD_BYTES))
        yield payment, history.deliveries(payment.user_id, timed.at_ms, grace_ms)


def expected_lines(
    history: DeviceHistory, payments: Iterable[TimedPayment], grace_ms: int
) -> Iterator[str]:
    """The notification lines (message text only) the payments must give, with our rendering."""
    for payment, devices in expected_deliveries(history, payments, grace_ms):
        if devices:
            message = render_message(payment)
            for _device, token in devices:
                yield notification_line(token, message)


def _json(value: dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
