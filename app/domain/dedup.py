"""What the join already did with a payment outcome: its deduplication record.

Key: ``payment_id \\x1f status`` (the separator cannot occur in validated
ids).  Value (JSON): ``{"at": event time in epoch ms, "devices": [...]}``,
the device ids already notified of that outcome, or ``"devices": null`` for
an outcome handled without devices (kept pending, or reported as having no
token): a replay must not turn that decision into a notification once the
user has a token.  ``at`` drives retention.  One record per payment outcome,
not per device, keeps the changelog writes at one per payment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The JSON value of a sent record (see the module docstring).
SentRecord = dict[str, Any]


def sent_key(payment_id: str, status: str) -> bytes:
    """The deduplication key of one payment outcome."""
    return "\x1f".join((payment_id, status)).encode("utf-8")


def notified(at_ms: int, device_ids: Iterable[str]) -> SentRecord:
    """The record of an outcome notified to ``device_ids``."""
    return {"at": at_ms, "devices": sorted(device_ids)}


def held(at_ms: int) -> SentRecord:
    """The record of an outcome handled without devices."""
    return {"at": at_ms, "devices": None}


def is_held(record: SentRecord | None) -> bool:
    """Whether ``record`` says the outcome was handled without devices."""
    return record is not None and record["devices"] is None


def notified_devices(record: SentRecord | None) -> frozenset[str]:
    """The device ids ``record`` says were notified (none for a held outcome)."""
    if record is None or record["devices"] is None:
        return frozenset()
    return frozenset(record["devices"])


def event_time(record: SentRecord) -> int:
    """The outcome's event time in epoch ms, which drives retention."""
    return int(record["at"])
