"""Kafka-side test helpers: topics with chosen layouts, reading topics back,
other clients' producers, and rewinding a consumer group."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Producer as LibrdkafkaProducer

from tests.integration.harness import BOOTSTRAP


def create_topics(partitions: dict[str, int]) -> None:
    """Create topics with the given partition counts before any worker does."""

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(n, p, 1) for n, p in partitions.items()])
        finally:
            await admin.close()

    asyncio.run(run())


def read_topic(topic: str, timeout: float = 10.0) -> list[Any]:
    """Every record of ``topic`` now, as aiokafka ``ConsumerRecord`` objects."""

    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, group_id=None)
        await consumer.start()
        try:
            tps = await _partitions(consumer, topic)
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp, start in (await consumer.beginning_offsets(tps)).items():
                consumer.seek(tp, start)
            records: list[Any] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                if loop.time() > deadline:
                    raise AssertionError(f"could not read {topic} to its end in {timeout}s")
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(run())


def dead_letters(topic: str) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in read_topic(topic)]


def produce_librdkafka(topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> None:
    """Produce like a non-Python service: librdkafka, default (non-murmur2) partitioner."""
    producer = LibrdkafkaProducer({"bootstrap.servers": BOOTSTRAP, "acks": "all"})
    errors: list[Any] = []
    for key, value in records:
        producer.produce(topic, key=key, value=value, on_delivery=lambda e, m: errors.append(e))
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} records not delivered"
    assert not [e for e in errors if e is not None], errors


def rewind_group(group: str, topic: str) -> None:
    """Set the committed offsets of ``group`` on ``topic`` back to 0 (a replay).

    The group must have no live member (stop the workers first).
    """

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=BOOTSTRAP, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(await _partitions(consumer, topic))
            tps = list(consumer.assignment())
            await consumer.commit({tp: 0 for tp in tps})
        finally:
            await consumer.stop()

    asyncio.run(run())


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    # consumer.topics() fetches fresh metadata but does not keep it.
    cluster = await consumer._client.fetch_all_metadata()
    partitions = cluster.partitions_for_topic(topic)
    assert partitions, f"topic {topic} does not exist"
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def produce_at(
    topic: str, records: Iterable[tuple[bytes | None, bytes | None, int]], batch: int = 0
) -> None:
    """Produce ``(key, value, timestamp_ms)`` records with aiokafka, acks=all.

    ``batch`` > 0 waits for Kafka after every that many records (another
    interleaving of the same input); 0 sends them all, then waits.
    """

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            pending = []
            for key, value, timestamp_ms in records:
                pending.append(
                    await producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms)
                )
                if batch and len(pending) >= batch:
                    await asyncio.gather(*pending)
                    pending = []
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(run())
