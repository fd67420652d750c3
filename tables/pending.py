"""Payments waiting for a late token, per user.

Key: the user key (as in the tokens table).  Value: a JSON list of
``{"payment": <payment JSON>, "event_time": <ms>}`` in arrival order, at most
``PUSHES_MAX_PENDING_PER_USER`` long.
"""

from __future__ import annotations

from typing import Any

from app.application import app
from app.config import settings
from tables.storage import rocksdb_options

Pending = list[dict[str, Any]]

pending_table = app.Table(
    "pending",
    partitions=settings.partitions,
    options=rocksdb_options(settings),
    key_type=bytes,
    help="Payments of users without a token yet, kept for the late-token grace period.",
)


def add_pending(
    entries: Pending | None, payment: dict[str, Any], event_time_ms: int, limit: int
) -> tuple[Pending, Pending]:
    """The list with ``payment`` appended, and the oldest entries dropped to fit."""
    result = [*(entries or []), {"payment": payment, "event_time": event_time_ms}]
    overflow = max(0, len(result) - limit)
    return result[overflow:], result[:overflow]


def split_due(entries: Pending | None, now_ms: int, grace_ms: int) -> tuple[Pending, Pending]:
    """``(still_waiting, expired)``: an entry expires once ``now_ms`` is past its grace."""
    waiting: Pending = []
    gone: Pending = []
    for entry in entries or []:
        (gone if now_ms > entry["event_time"] + grace_ms else waiting).append(entry)
    return waiting, gone
