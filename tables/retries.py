"""The retry schedule: notifications the provider asked to send again later.

Key: ``user \\x1f payment \\x1f status \\x1f device``
(:func:`app.domain.delivery.retry_key`), so a user's waiting retries are one
key range.  Value: the delivery exactly as first built (the same payload and
tag on every try), its payment's event time, the attempts so far, when the
next is due and the last error (:mod:`app.streams.delivery`).  Written on the
user's canonical partition; a worker that takes the partition over finds
the schedule in the changelog and goes on with it.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.topics import RETRIES_TABLE
from tables.store import declare_table


def declare(app: Any, settings: Settings) -> Any:
    """The retries table of ``app``."""
    return declare_table(
        app,
        RETRIES_TABLE,
        settings,
        "Notifications waiting to be sent again: user/payment/status/device -> attempt.",
    )
