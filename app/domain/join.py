"""The decisions of the payment/token join, as pure functions.

The stream handlers (:mod:`app.streams.payments`) feed these with what they
read from the tables and act on what they return.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from app.domain.records import Payment
from app.domain.timing import iso_to_ms


class Delivery(NamedTuple):
    """One notification to send: a device and its token (a tuple: one per notification)."""

    device_id: str
    token: str


def event_time_ms(payment: Payment, record_timestamp_s: float | None) -> int:
    """When the payment happened: ``occurred_at`` if given, else the record's timestamp."""
    if payment.occurred_at is not None:
        return iso_to_ms(payment.occurred_at)
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
