"""What the join already did with each payment outcome: the deduplication table.

Key: ``payment_id \\x1f status`` (:func:`app.domain.dedup.sent_key`).  Value:
``{"at": event time in epoch ms, "devices": [...] | null}``
(:data:`app.domain.dedup.SentRecord`).  Written on the user's canonical
partition, like the tokens, so a payment and its record always meet in the
same partition database.  Its changelog writes can be awaited
(:class:`tables.store.AcknowledgedTable`): each batch waits for them before
its source offsets become committable.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.domain.dedup import SentRecord
from app.topics import SENT_TABLE
from tables.store import AcknowledgedTable, rocksdb_options


def declare(app: Any, settings: Settings) -> AcknowledgedTable[bytes, SentRecord]:
    """The sent table of ``app``."""
    table: AcknowledgedTable[bytes, SentRecord] = AcknowledgedTable(
        app,
        name=SENT_TABLE,
        beacon=app.tables.beacon,
        partitions=settings.partitions,
        options=rocksdb_options(settings),
        key_type=bytes,
        help="Payment outcomes already handled: payment/status -> {at, devices}.",
    )
    app.tables.add(table)
    return table
