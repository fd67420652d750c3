"""Processing the records Faust's consumer skipped, so that none is lost.

Around rebalances, Faust 0.15.3 can hand a stream a partition's records with
a hole in their offsets: it drops what it fetched before the rebalance, seeks
back, and a fetch already in flight moves its read position past the
records it should fetch again.  The crash test lost payments that way.  The
agents therefore check that each partition's offsets arrive without a hole,
starting from the committed offset after each rebalance.  On a hole they read
the missing offsets straight from Kafka and process them first, in order
(a real gap, such as a transaction marker, simply yields no record).  What is
processed twice is harmless: the sent table deduplicates notifications and
token events apply idempotently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition

from app.config import Settings
from app.topology import standalone_consumer


@dataclass(frozen=True)
class Record:
    """A record read outside Faust, shaped like Faust's message for the agents."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None  # seconds, as in Faust


class OffsetTracker:
    """Per partition, the next offset the stream should deliver."""

    def __init__(self, committed: Callable[[Any], int | None]) -> None:
        self._committed = committed
        self._next: dict[Any, int] = {}

    def reset(self) -> None:
        """After a rebalance every partition restarts at its committed offset."""
        self._next.clear()

    def hole_before(self, tp: Any, offset: int) -> tuple[int, int] | None:
        """The offsets ``[first, offset)`` that were skipped before ``offset``, if any."""
        expected = self._next.get(tp)
        if expected is None:
            expected = self._committed(tp)
        self._next[tp] = offset + 1
        if expected is not None and offset > expected:
            return expected, offset
        return None


async def read_range(settings: Settings, tp: Any, first: int, end: int) -> list[Record]:
    """The records of partition ``tp`` with offsets in ``[first, end)``."""
    consumer = await standalone_consumer(settings)
    try:
        partition = TopicPartition(tp.topic, tp.partition)
        consumer.assign([partition])
        consumer.seek(partition, first)
        records: list[Record] = []
        while await consumer.position(partition) < end:
            batch = await consumer.getmany(partition, timeout_ms=2000)
            got = batch.get(partition, [])
            if not got:
                break  # nothing more to read: the rest of the range holds no record
            records.extend(
                Record(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp / 1000)
                for r in got
                if r.offset < end
            )
        return records
    finally:
        await consumer.stop()
