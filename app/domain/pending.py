"""Payments waiting for a late token, per user.

The pending table (:mod:`tables.pending`) holds, per user, a list of
``{"payment": <payment JSON>, "event_time": <ms>}`` in arrival order, at most
``PUSHES_MAX_PENDING_PER_USER`` long.
"""

from __future__ import annotations

from typing import Any

from app.domain.timing import grace_over

Pending = list[dict[str, Any]]


def add_pending(
    entries: Pending | None, payment: dict[str, Any], event_time_ms: int, limit: int
) -> tuple[Pending, Pending]:
    """The list with ``payment`` appended, and the oldest entries dropped to fit."""
    result = [*(entries or []), {"payment": payment, "event_time": event_time_ms}]
    overflow = max(0, len(result) - limit)
    return result[overflow:], result[:overflow]


def split_due(entries: Pending | None, now_ms: int, grace_ms: int) -> tuple[Pending, Pending]:
    """``(still_waiting, expired)``: an entry expires once its grace is over at ``now_ms``."""
    waiting: Pending = []
    gone: Pending = []
    for entry in entries or []:
        (gone if grace_over(entry["event_time"], now_ms, grace_ms) else waiting).append(entry)
    return waiting, gone
