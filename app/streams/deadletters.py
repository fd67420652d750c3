"""Writing dead letters (the envelope is :mod:`app.domain.deadletter`).

A record is dead-lettered once, even when its source partition is replayed
after a crash: before the first letter of a process or after a rebalance, the
writer reads back the tail of the dead-letter topic to learn the highest
source offset already there for each source partition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from aiokafka import TopicPartition

from app.config import Settings
from app.domain.deadletter import SourceRecord, envelope, highest_offsets, letter_key
from app.domain.records import InvalidRecord, decode_json
from app.kafka.admin import partition_counts
from app.kafka.reader import standalone_consumer
from app.ops import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

# How far back the read-back looks on each dead-letter partition.  A replay
# only repeats what was processed since the last offset commit (seconds), so
# its letters are always among the most recent ones.
TAIL_RECORDS = 10_000


class DeadLetters:
    """Writes dead letters once each; ``send`` is awaited until Kafka has it."""

    def __init__(self, settings: Settings, topic: Any) -> None:
        self._settings = settings
        self._topic = topic
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
        pending = await self._topic.send(key=letter_key(source), value=body)
        await pending
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


async def parse_or_dead_letter(
    message: Any, parse: Callable[[Any], T], dead_letters: DeadLetters, max_bytes: int
) -> T | None:
    """The parsed record, or ``None`` after dead-lettering it.

    A record no parser accepts never stops the stream: it is kept, once, on
    the dead-letter topic for people, and processing goes on.
    """
    try:
        return parse(decode_json(message.value, max_bytes))
    except InvalidRecord as exc:
        source = SourceRecord(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
            key=message.key,
            value=message.value,
        )
        if await dead_letters.send(source, exc):
            metrics.dead_letters.labels(message.topic, exc.code).inc()
            log.warning(
                "dead-lettered invalid record %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
        return None
