"""A consumed record, parsed once, with the order key the merge sorts it by.

The join parses every record when it arrives, so that its event time is
known before it is ordered: ``occurred_at`` or ``updated_at`` when the record
carries one, else its Kafka timestamp (never the time it is processed).  A
record no parser accepts keeps its Kafka timestamp and its error; it is
dead-lettered in its turn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

from app.domain.join import event_time_ms
from app.domain.ordering import PAYMENT_RANK, TOKEN_RANK
from app.domain.records import (
    InvalidRecord,
    Payment,
    TokenEvent,
    decode_json,
    iso_utc,
    parse_payment,
    parse_token_event,
)
from app.domain.timing import iso_to_ms


def fast_loads(text: str) -> Any:
    """:mod:`orjson`, with the standard decoder where the two would differ.

    A fractional ``amount`` is decoded again with ``Decimal`` so that it keeps
    every digit it was sent with, and invalid JSON gets the standard error.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, parse_float=Decimal)
    if isinstance(value, dict) and isinstance(value.get("amount"), float):
        return json.loads(text, parse_float=Decimal)
    return value


@dataclass(slots=True)
class Item:
    """One consumed record of the join, parsed, and where it goes (set by the engine)."""

    record: Any  # aiokafka's ConsumerRecord: topic, partition, offset, key, value, timestamp
    event_ms: int
    parsed: TokenEvent | Payment | InvalidRecord
    #: The canonical partition of its user (its own partition if it is invalid).
    target: int = -1
    #: The canonical partition it is forwarded to, or ``None``: processed here.
    hop: int | None = None


def read_token(record: Any, max_bytes: int) -> tuple[int, int, Item]:
    """A token record as ``(event time, rank, item)`` for the merge."""
    timestamp: int = record.timestamp
    try:
        data = decode_json(record.value, max_bytes, fast_loads)
        stamped = not isinstance(data, dict) or (
            "updated_at" not in data and "observed_at" not in data
        )
        event = parse_token_event(data, stamp=_iso(timestamp) if stamped else None)
    except InvalidRecord as exc:
        return timestamp, TOKEN_RANK, Item(record, timestamp, exc)
    event_ms = timestamp if stamped else iso_to_ms(event.updated_at)
    return event_ms, TOKEN_RANK, Item(record, event_ms, event)


# Records produced together share their millisecond: formatting it once pays.
_iso = lru_cache(maxsize=4096)(iso_utc)


def read_payment(record: Any, max_bytes: int) -> tuple[int, int, Item]:
    """A payment record as ``(event time, rank, item)`` for the merge."""
    try:
        payment = parse_payment(decode_json(record.value, max_bytes, fast_loads))
    except InvalidRecord as exc:
        return record.timestamp, PAYMENT_RANK, Item(record, record.timestamp, exc)
    event_ms = event_time_ms(payment, record.timestamp / 1000)
    return event_ms, PAYMENT_RANK, Item(record, event_ms, payment)
