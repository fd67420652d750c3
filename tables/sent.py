"""What the join already did with a payment: its deduplication record.

Key: ``payment_id \\x1f status`` (the separator cannot occur in validated
ids).  Value (JSON): ``{"at": event time in epoch ms, "devices": [...]}``,
the device ids already notified of that outcome, or ``"devices": null`` for
an outcome handled without devices (kept pending, or reported as having no
token): a replay must not turn that decision into a notification once the
user has a token.  ``at`` drives retention.  One record per payment outcome,
not per device, keeps the changelog writes at one per payment.  Written on
the user's canonical partition, like the tokens, so a payment and its record
always meet in the same partition database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from faust.types import FutureMessage

from app.application import app
from app.config import settings
from tables.restore import BulkRestoreTable
from tables.storage import rocksdb_options

#: The JSON value of a sent record (see the module docstring).
SentRecord = dict[str, Any]


class AcknowledgedTable(BulkRestoreTable[bytes, SentRecord]):
    """A table whose changelog writes can be awaited until Kafka has them.

    Faust only enqueues a table's changelog record.  A notification logged
    while its "sent" record still sits in a send buffer is repeated by the
    next owner of the partition after a crash; the agents await the writes
    once per batch, which keeps that window to one batch's notifications.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unacknowledged: list[FutureMessage] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        """Enqueue the changelog record, and remember it until acknowledged."""
        pending: FutureMessage = super().send_changelog(*args, **kwargs)
        self._unacknowledged.append(pending)
        return pending

    async def acknowledged(self) -> None:
        """Wait until Kafka has every changelog record written so far.

        Both agents call this; each waits for everything written before its
        call, including the other's records, and only finished ones are dropped.
        """
        waiting = self._unacknowledged
        if not waiting:
            return
        await asyncio.gather(*waiting)
        self._unacknowledged = [pending for pending in self._unacknowledged if not pending.done()]


sent_table = AcknowledgedTable(
    app,
    name="sent",
    beacon=app.tables.beacon,
    partitions=settings.partitions,
    options=rocksdb_options(settings),
    key_type=bytes,
    help="Payment outcomes already handled: payment/status -> {at, devices}.",
)
app.tables.add(sent_table)


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


def event_time(record: SentRecord | int) -> int:
    """The outcome's event time in epoch ms, which drives retention."""
    # Records written before one record per outcome (a key per device) hold
    # just the event time; retention sweeps still meet them in old data dirs.
    if isinstance(record, int):
        return record
    return int(record["at"])


def expired(event_time_ms: int, stream_time_ms: int, retention_ms: int) -> bool:
    """Whether a record of ``event_time_ms`` is past retention at ``stream_time_ms``."""
    return event_time_ms < stream_time_ms - retention_ms
