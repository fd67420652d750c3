"""What was already notified: the deduplication record of the join.

Key: ``payment_id \\x1f status \\x1f device_id`` (the separator cannot occur in
validated ids) for a notification sent to a device, or the same with an empty
device id for a payment handled without devices (kept pending, or reported as
having no token): a replay must not turn that decision into a notification
once the user has a token.  Value: the payment's event time in epoch
milliseconds, which drives retention.  Written on the user's canonical partition, like the tokens,
so a payment and its record always meet in the same partition database.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import FutureMessage

from app.application import app
from app.config import settings


class AcknowledgedTable(faust.Table[bytes, int]):
    """A table whose changelog writes can be awaited until Kafka has them.

    Faust only enqueues a table's changelog record.  A notification logged
    while its "sent" record still sits in a send buffer is repeated by the
    next owner of the partition after a crash; awaiting the write right after
    the send keeps that window to one payment's notifications.
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
        """Wait until Kafka has every changelog record written so far."""
        waiting, self._unacknowledged = self._unacknowledged, []
        for pending in waiting:
            await pending


sent_table = AcknowledgedTable(
    app,
    name="sent",
    beacon=app.tables.beacon,
    partitions=settings.partitions,
    key_type=bytes,
    help="Notifications already sent: payment/status/device -> event time (ms).",
)
app.tables.add(sent_table)


def sent_key(payment_id: str, status: str, device_id: str) -> bytes:
    """The deduplication key of one notification."""
    return "\x1f".join((payment_id, status, device_id)).encode("utf-8")


def handled_without_devices_key(payment_id: str, status: str) -> bytes:
    """The key recording that a payment outcome found no device (no device id is empty)."""
    return sent_key(payment_id, status, "")


def expired(event_time_ms: int, stream_time_ms: int, retention_ms: int) -> bool:
    """Whether a record of ``event_time_ms`` is past retention at ``stream_time_ms``."""
    return event_time_ms < stream_time_ms - retention_ms
