"""The bench's own Kafka clients: topics, fast and paced producers, offsets, raw reads.

Producers are librdkafka (confluent-kafka): an order of magnitude faster
than a Python client, so filling a topic with a million records takes
seconds and leaves the CPU to the worker.  ``murmur2_random`` is librdkafka's
Java-compatible partitioner: a record keyed by user id lands on the user's
canonical partition, exactly as from the worker's own aiokafka producer.
The raw changelog read uses aiokafka, the client the worker restores with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka import TopicPartition as RdTopicPartition

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class Produced:
    """The outcome of producing a batch of records."""

    records: int
    errors: int
    seconds: float

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds if self.seconds else 0.0


def create_topics(bootstrap: str, partitions: dict[str, int]) -> None:
    """Create the topics (an existing one is fine)."""

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(name, count, 1) for name, count in partitions.items()]
            )
            for name, code, *_ in response.topic_errors:
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"could not create topic {name}: error {code}")
        finally:
            await admin.close()

    asyncio.run(run())


def delete_topics_containing(bootstrap: str, marker: str) -> list[str]:
    """Delete every topic whose name contains ``marker``; return their names."""

    async def run() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = sorted(t for t in await admin.list_topics() if marker in t)
            if names:
                await admin.delete_topics(names)
            return names
        finally:
            await admin.close()

    return asyncio.run(run())


def _producer(bootstrap: str, **extra: str | int) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "partitioner": "murmur2_random",
            "enable.idempotence": False,
            **extra,
        }
    )


class _Failures:
    """A delivery callback counting the records Kafka did not take."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        self.count += error is not None


def produce_all(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> Produced:
    """Produce every ``(key, value)`` as fast as possible; wait for every acknowledgement."""
    return produce_timed(bootstrap, topic, ((key, value, None) for key, value in records))


def produce_timed(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes, int | None]]
) -> Produced:
    """Produce every ``(key, value, timestamp ms)`` as fast as possible, like :func:`produce_all`.

    The timestamp is the record's Kafka timestamp (CreateTime): its event time.
    ``None`` leaves it to the producer (the time of sending).
    """
    producer = _producer(
        bootstrap,
        **{
            "linger.ms": 50,
            "batch.size": 1 << 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 500_000,
        },
    )
    failures = _Failures()

    started = time.monotonic()
    count = 0
    for key, value, timestamp in records:
        while True:
            try:
                producer.produce(
                    topic, value=value, key=key, timestamp=timestamp or 0, on_delivery=failures
                )
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.05)
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    return Produced(count, failures.count + left, time.monotonic() - started)


def wait(
    seconds: float,
    poll: Callable[[float], object],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Wait up to ``seconds`` while serving delivery reports (``poll``), without spinning.

    librdkafka's poll takes whole milliseconds and confluent-kafka truncates
    the timeout: ``poll(0.0009)`` returns at once.  A paced producer at
    1,000 records/s waits less than a millisecond between records, so poll
    alone would keep a core busy; below a millisecond it sleeps instead.
    """
    if seconds >= 0.001:
        poll(seconds)
    else:
        sleep(seconds)


def produce_paced(
    bootstrap: str,
    topic: str,
    records: Iterable[tuple[bytes, bytes]],
    rate: float,
    on_send: Callable[[int, int], None],
) -> Produced:
    """Produce at ``rate`` records/s, paced against the start; ``on_send(i, epoch_ms)``.

    Each record carries its produce time as the Kafka timestamp (CreateTime),
    the start of its latency.  ``linger.ms`` is 1: a paced payments producer
    sends at once rather than waiting to fill batches.
    """
    producer = _producer(bootstrap, **{"linger.ms": 1})
    failures = _Failures()

    started = time.monotonic()
    count = 0
    for key, value in records:
        # poll() returns early once it served a delivery report: wait in a loop.
        while (ahead := count / rate - (time.monotonic() - started)) > 0:
            wait(ahead, producer.poll)
        now_ms = int(time.time() * 1000)
        producer.produce(topic, value=value, key=key, timestamp=now_ms, on_delivery=failures)
        # Serve the delivery reports that are in: a record counts against the
        # producer's queue until its report is served, and the waits above may
        # have slept instead of polling.
        producer.poll(0)
        on_send(count, now_ms)
        count += 1
    left = producer.flush(120)
    return Produced(count, failures.count + left, time.monotonic() - started)


class Watermarks:
    """Reads the high watermarks (next offsets) of a topic's partitions."""

    def __init__(self, bootstrap: str, topic: str, partitions: int) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": "pushes-bench-watermarks"}
        )
        self._partitions = [RdTopicPartition(topic, p) for p in range(partitions)]

    def total(self) -> int:
        """Records ever written to the topic (sum of high watermarks)."""
        return sum(
            self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)[1]
            for tp in self._partitions
        )

    def close(self) -> None:
        """Leave the cluster."""
        self._consumer.close()


class GroupLag:
    """How far a consumer group's committed offsets are behind the end of its topics.

    Reads offsets only: it never joins the group, so the member it watches
    is not disturbed.
    """

    def __init__(self, bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
        )
        self._partitions = [RdTopicPartition(t, p) for t in topics for p in range(partitions)]

    def lag(self) -> int:
        """Records not committed yet, over every partition (a missing topic counts none)."""
        behind = 0
        committed = self._consumer.committed(self._partitions, timeout=10)
        for tp in committed:
            if tp.error is not None:
                continue
            try:
                end = self._consumer.get_watermark_offsets(tp, timeout=5, cached=False)[1]
            except KafkaException:  # a topic the worker has not created yet
                continue
            behind += max(0, end - max(tp.offset, 0))
        return behind

    def close(self) -> None:
        """Leave the cluster."""
        self._consumer.close()


def skip_to_end(bootstrap: str, group: str, topics: list[str], partitions: int) -> None:
    """Commit the end offsets of ``topics`` for ``group`` (it must have no live member).

    What a phase that ran out of time left unprocessed is skipped, so it does
    not flow into the next phase's measurement.
    """

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(t, p) for t in topics for p in range(partitions)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            # A stopped worker stays a member until its session times out, and
            # the broker refuses commits from outside a group with members.
            deadline = time.monotonic() + 120
            while True:
                try:
                    await consumer.commit(ends)
                    return
                except CommitFailedError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(1)
        finally:
            await consumer.stop()

    asyncio.run(run())


@dataclass(frozen=True)
class RawRead:
    """A topic read from its beginning to its end."""

    records: int
    bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        """Records per second."""
        return self.records / self.seconds if self.seconds else 0.0


async def read_to_end(
    bootstrap: str,
    topic: str,
    partitions: int,
    on_batch: Callable[[list[Any]], None],
    max_records: int = 10_000,
) -> float:
    """Hand every record of ``topic`` now, in batches, to ``on_batch``.

    A plain aiokafka consumer without a group, from the beginning to the end
    offsets at the start.  Returns the seconds from then (the consumer set up)
    to the last record.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        started = time.monotonic()
        left = {tp for tp in tps if ends[tp] > 0}
        while left:
            batch = await consumer.getmany(timeout_ms=1000, max_records=max_records)
            for tp, records in batch.items():
                on_batch(records)
                if records and records[-1].offset + 1 >= ends[tp]:
                    left.discard(tp)
        return time.monotonic() - started
    finally:
        await consumer.stop()


def read_raw(bootstrap: str, topic: str, partitions: int) -> RawRead:
    """Read every record of ``topic`` with a plain aiokafka consumer (no decoding)."""
    records = size = 0

    def count(part: list[Any]) -> None:
        nonlocal records, size
        records += len(part)
        size += sum(len(r.value or b"") + len(r.key or b"") for r in part)

    started = time.monotonic()
    asyncio.run(read_to_end(bootstrap, topic, partitions, count, max_records=50_000))
    return RawRead(records, size, time.monotonic() - started)
