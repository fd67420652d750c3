"""Event time: one conversion from ISO 8601, one grace rule, one retention rule.

Every decision that depends on time (is a payment still waiting for a late
token, is a deduplication record old enough to forget) compares event times
in epoch milliseconds, never the worker's wall clock.
"""

from __future__ import annotations

from datetime import datetime


def iso_to_ms(timestamp: str) -> int:
    """Epoch milliseconds of an ISO 8601 timestamp (as :mod:`app.domain.records` stores them)."""
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def grace_over(event_ms: int, now_ms: int, grace_ms: int) -> bool:
    """Whether an event of ``event_ms`` waited its whole grace period by ``now_ms``.

    A grace of 0 is over at once: nothing waits.
    """
    return grace_ms <= 0 or now_ms > event_ms + grace_ms


def past_retention(event_ms: int, now_ms: int, retention_ms: int) -> bool:
    """Whether a record of ``event_ms`` is older than ``retention_ms`` at ``now_ms``."""
    return event_ms < now_ms - retention_ms
