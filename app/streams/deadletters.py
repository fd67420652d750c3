"""Writing dead letters (the envelope is :mod:`app.domain.deadletter`).

A record is dead-lettered once, even when its source partition is replayed
after a crash: before the first letter of a process or after a rebalance, the
writer reads back the tail of the dead-letter topic to learn the highest
source offset already there for each source partition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone

from aiokafka import TopicPartition

from app.config import Settings
from app.domain.deadletter import SourceRecord, envelope, highest_offsets, letter_key
from app.domain.records import InvalidRecord
from app.kafka.admin import partition_counts
from app.kafka.reader import standalone_consumer

log = logging.getLogger(__name__)

# How far back the read-back looks on each dead-letter partition.  A replay
# only repeats what was processed since the last offset commit (seconds), so
# its letters are always among the most recent ones.
TAIL_RECORDS = 10_000


class DeadLetters:
    """Writes dead letters once each; ``send`` is awaited until Kafka has it."""

    def __init__(self, settings: Settings, send: Callable[[bytes, bytes], Awaitable[None]]) -> None:
        self._settings = settings
        self._send = send
        self._highest: dict[tuple[str, int], int] | None = None

    def forget(self) -> None:
        """Read the topic back again before the next letter (after a rebalance)."""
        self._highest = None

    async def send(self, source: SourceRecord, error: InvalidRecord) -> bool:
        """Dead-letter ``source``; ``False`` if it already was (a replay)."""
        if self._highest is None:
            self._highest = await self._read_back()
        tp = (source.topic, source.partition)
        if source.offset <= self._highest.get(tp, -1):
            return False
        body = json.dumps(envelope(source, error, datetime.now(timezone.utc))).encode()
        await self._send(letter_key(source), body)
        self._highest[tp] = source.offset
        return True

    async def _read_back(self) -> dict[tuple[str, int], int]:
        consumer = await standalone_consumer(self._settings)
        try:
            name = self._settings.dead_letter_topic
            count = (await partition_counts(self._settings, [name])).get(name, 0)
            tps = [TopicPartition(name, p) for p in range(count)]
            if not tps:
                return {}
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(starts[tp], ends[tp] - TAIL_RECORDS))
            letters: list[bytes] = []
            remaining = {tp for tp in tps if ends[tp] > starts[tp]}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                for records in batch.values():
                    letters.extend(r.value for r in records if r.value is not None)
                remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
            return highest_offsets(letters)
        finally:
            await consumer.stop()
