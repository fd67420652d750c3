"""The decisions of the payment/token join, as pure functions.

The agents (app/agents.py) feed these with what they read from the tables and
act on what they return; nothing here touches Kafka or Faust.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from app.models import Payment


@dataclass(frozen=True)
class Delivery:
    """One notification to send: a device and its token."""

    device_id: str
    token: str


def event_time_ms(payment: Payment, record_timestamp_s: float | None) -> int:
    """When the payment happened: ``occurred_at`` if given, else the record's timestamp."""
    if payment.occurred_at is not None:
        return int(datetime.fromisoformat(payment.occurred_at).timestamp() * 1000)
    return int((record_timestamp_s or 0.0) * 1000)


def plan_deliveries(
    devices: list[tuple[str, str]],
    already_notified: Collection[str],
) -> tuple[list[Delivery], int]:
    """The notifications still to send for a payment outcome, and how many of
    ``devices`` already have it (``already_notified``, from its sent record)."""
    todo: list[Delivery] = []
    suppressed = 0
    for device_id, token in devices:
        if device_id in already_notified:
            suppressed += 1
        else:
            todo.append(Delivery(device_id, token))
    return todo, suppressed


def within_grace(payment_time_ms: int, now_ms: int, grace_ms: int) -> bool:
    """Whether a payment without a token may still wait for one at ``now_ms``."""
    return grace_ms > 0 and now_ms <= payment_time_ms + grace_ms
