"""What the join already did with each payment outcome: the deduplication table.

Key: ``payment_id \\x1f status`` (:func:`app.domain.dedup.sent_key`).  Value:
``{"at": event time in epoch ms, "devices": [...] | null}``
(:data:`app.domain.dedup.SentRecord`).  Written on the user's canonical
partition, like the tokens, so a payment and its record always meet in the
same partition database.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.topics import SENT_TABLE
from tables.store import declare_table


def declare(app: Any, settings: Settings) -> Any:
    """The sent table of ``app``."""
    return declare_table(
        app,
        SENT_TABLE,
        settings,
        "Payment outcomes already handled: payment/status -> {at, devices}.",
    )
