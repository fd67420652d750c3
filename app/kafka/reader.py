"""Reading partitions directly, outside any consumer group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.config import Settings
from app.kafka.security import kafka_client_options


@dataclass(frozen=True)
class Record:
    """A record read outside Faust, shaped like Faust's message for the stream handlers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None  # seconds, as in Faust


async def standalone_consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A started consumer outside any group, for reading partitions directly.

    ``options`` go to :class:`aiokafka.AIOKafkaConsumer` (fetch sizes, say).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **kafka_client_options(settings),
        **options,
    )
    await consumer.start()
    return consumer


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
