"""The batch engine: records in batches, one wait for Kafka per batch, then acks.

Records come from an agent's stream in batches of up to
``PUSHES_BATCH_MAX_RECORDS`` (waiting at most ``PUSHES_BATCH_WAIT_MS`` for
more).  The handler appends the deliveries Kafka must acknowledge (forwarded
records) to a list; once per batch we wait for those and for the sent table's
changelog, and only then are the batch's events acked and their offsets
committable.  A crash can therefore repeat at most one batch's notifications.
Records Faust skipped before a record are read directly and processed first
(:mod:`app.faust_fixes.skipped_records`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust

from app.config import Settings
from app.faust_fixes.skipped_records import MarkProcessedFix, OffsetTracker
from app.faust_fixes.stale_events import StaleEvent
from app.kafka.reader import read_range
from tables.store import on_event

log = logging.getLogger(__name__)

#: Handles one record; appends the deliveries Kafka must acknowledge.
Handler = Callable[[Any, list[Awaitable[Any]]], Awaitable[None]]


class Batches:
    """Runs an agent's stream through a handler, batch by batch."""

    def __init__(
        self,
        settings: Settings,
        consumer: Callable[[], MarkProcessedFix],
        offsets: OffsetTracker,
        acknowledged: Callable[[], Awaitable[None]],
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._offsets = offsets
        self._acknowledged = acknowledged

    async def run(self, stream: faust.StreamT[Any], handle: Handler) -> None:
        """Hand every record of ``stream`` to ``handle``, with any the consumer skipped."""
        # StreamT does not declare take_events; every agent stream is a faust.Stream,
        # and its events are StaleEvents (the app's Event class).
        batches = cast(faust.Stream[Any], stream).take_events(
            self._settings.batch_max_records, within=self._settings.batch_wait_ms / 1000
        )
        async for taken in batches:
            events = cast(list[StaleEvent], taken)
            deliveries: list[Awaitable[Any]] = []
            processed: list[tuple[Any, range]] = []
            for event in events:
                if event.is_stale():
                    continue  # not acked either: fetched again, or read as a hole
                with on_event(event):
                    records, skipped = await self._with_skipped(event.message)
                    for record in records:
                        if event.is_stale():
                            break  # a rebalance came while we waited: the next owner does it
                        await handle(record, deliveries)
                    else:
                        processed.append((event.message.tp, skipped))
            await asyncio.gather(*deliveries)
            await self._acknowledged()
            consumer = self._consumer()
            for tp, skipped in processed:
                consumer.mark_processed(tp, skipped)

    async def _with_skipped(self, message: Any) -> tuple[list[Any], range]:
        """The records to process for ``message`` (any the consumer skipped, then it),
        and the skipped offsets, to count as processed once they are."""
        hole = self._offsets.hole_before(message.tp, message.offset)
        if hole is None:
            return [message], range(0)
        first, end = hole
        skipped = await read_range(self._settings, message.tp, first, end)
        log.warning(
            "%s[%d]: offsets %d..%d were not delivered; processing the %d records read directly",
            message.topic,
            message.partition,
            first,
            end - 1,
            len(skipped),
        )
        return [*skipped, message], range(first, end)
