"""The dead-letter topic: records no code path can process, kept for people.

Each dead letter is keyed ``<source topic>/<source partition>`` (so the letters
of one source partition stay in order on one dead-letter partition) and holds a
JSON envelope with the original key and value bytes (base64), the source
topic, partition, offset and timestamp, the reason and when it was written.

A record is dead-lettered once, even when its source partition is replayed
after a crash: before the first letter of a process or after a rebalance, the
writer reads back the tail of the dead-letter topic to learn the highest
source offset already there for each source partition.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aiokafka import TopicPartition

from app.config import Settings
from app.models import InvalidRecord
from app.topology import partition_counts, standalone_consumer

log = logging.getLogger(__name__)

# How far back the read-back looks on each dead-letter partition.  A replay
# only repeats what was processed since the last offset commit (seconds), so
# its letters are always among the most recent ones.
TAIL_RECORDS = 10_000


@dataclass(frozen=True)
class SourceRecord:
    """Where a bad record came from, and its original bytes."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


def letter_key(source: SourceRecord) -> bytes:
    """The dead letter's Kafka key: one source partition, one ordered stream."""
    return f"{source.topic}/{source.partition}".encode()


def envelope(source: SourceRecord, error: InvalidRecord, now: datetime) -> dict[str, Any]:
    """The JSON body of a dead letter."""
    return {
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp_ms": source.timestamp_ms,
        },
        "key_base64": _b64(source.key),
        "value_base64": _b64(source.value),
        "reason": str(error),
        "reason_code": error.code,
        "dead_lettered_at": now.astimezone(timezone.utc).isoformat(timespec="milliseconds"),
    }


def highest_offsets(envelopes: Iterable[bytes]) -> dict[tuple[str, int], int]:
    """The highest source offset per source partition among raw dead letters."""
    highest: dict[tuple[str, int], int] = {}
    for raw in envelopes:
        try:
            src = json.loads(raw)["source"]
            tp, offset = (str(src["topic"]), int(src["partition"])), int(src["offset"])
        except (ValueError, KeyError, TypeError):
            continue  # not one of ours; someone else wrote to the topic
        if offset > highest.get(tp, -1):
            highest[tp] = offset
    return highest


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


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
