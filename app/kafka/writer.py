"""The join's own producer: whole batches per partition, awaited until Kafka has them.

A plain aiokafka producer (acks=all).  A batch of the join writes its table
changes to the changelogs, forwards records through the canonical topics
and dead-letters bad records; :class:`Writes` collects those per topic
partition into aiokafka record batches, one future each, and reports the
offset of each partition's last record, which the table stores as its
changelog position.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition

from app.config import Settings
from app.kafka.security import kafka_client_options

# aiokafka's record builder takes a list and only reads it.
_NO_HEADERS: list[tuple[str, bytes]] = []

#: The largest record batch sent; below the broker's default message.max.bytes (1 MiB).
MAX_BATCH_BYTES = 512 * 1024


class Writer:
    """One producer for everything the join writes."""

    def __init__(self, settings: Settings) -> None:
        self._options: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers,
            "acks": "all",
            "max_batch_size": MAX_BATCH_BYTES,
            "linger_ms": 0,
            **kafka_client_options(settings),
        }
        self._client: AIOKafkaProducer | None = None

    @property
    def _producer(self) -> AIOKafkaProducer:
        if self._client is None:
            raise RuntimeError("the writer is not started")
        return self._client

    async def start(self) -> None:
        """Connect to the brokers (aiokafka clients belong to a running loop)."""
        self._client = AIOKafkaProducer(**self._options)
        await self._client.start()

    async def stop(self) -> None:
        """Send what is buffered and close."""
        if self._client is not None:
            await self._client.stop()

    def writes(self) -> Writes:
        """An empty set of writes to fill and send."""
        return Writes(self._producer)

    async def send_one(
        self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None
    ) -> Any:
        """Produce one record and wait until Kafka has it; its metadata."""
        sent = await self._producer.send(topic, value=value, key=key, partition=partition)
        return await sent


@dataclass
class _Open:
    builder: Any
    count: int = 0


@dataclass
class Writes:
    """Records to send, collected per topic partition into record batches."""

    producer: AIOKafkaProducer
    _open: dict[TopicPartition, _Open] = field(default_factory=dict)
    _sent: list[tuple[TopicPartition, int, Awaitable[Any]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self._open or self._sent)

    async def add(
        self,
        tp: TopicPartition,
        key: bytes | None,
        value: bytes | None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Add one record for ``tp`` (a full batch is sent on the way)."""
        batch = self._open.get(tp)
        if batch is None:
            batch = self._open[tp] = _Open(self.producer.create_batch())
        extra = headers if headers is not None else _NO_HEADERS
        appended = batch.builder.append(key=key, value=value, timestamp=timestamp_ms, headers=extra)
        if appended is None:
            await self._send(tp, batch)
            batch = self._open[tp] = _Open(self.producer.create_batch())
            appended = batch.builder.append(
                key=key, value=value, timestamp=timestamp_ms, headers=extra
            )
            if appended is None:
                raise ValueError(f"a record for {tp} is larger than {MAX_BATCH_BYTES} bytes")
        batch.count += 1

    async def send(self) -> dict[TopicPartition, int]:
        """Send every batch, wait until Kafka has all; the last offset written per partition."""
        for tp, batch in list(self._open.items()):
            await self._send(tp, batch)
        self._open.clear()
        sent, self._sent = self._sent, []
        results = await asyncio.gather(*(future for _, _, future in sent))
        last: dict[TopicPartition, int] = {}
        for (tp, count, _), metadata in zip(sent, results, strict=True):
            end = metadata.offset + count - 1
            if end > last.get(tp, -1):
                last[tp] = end
        return last

    async def _send(self, tp: TopicPartition, batch: _Open) -> None:
        future = await self.producer.send_batch(batch.builder, tp.topic, partition=tp.partition)
        self._sent.append((tp, batch.count, future))
