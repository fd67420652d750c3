"""The join's own consumer: the partitions it is given, read from the given offsets.

A plain aiokafka consumer outside any group.  The worker's group member
(Faust's consumer) decides which partitions this worker owns and commits
what the join finished; this consumer only reads them, from the committed
offsets, after every rebalance.  Each assignment starts with a seek before
any fetch, so no fetch of an earlier position can be in flight (the race
that gave Faust's stream holes after rebalances).

It also tells the join what it needs to order its inputs
(:mod:`app.domain.ordering`): whether a partition has records on the broker
that are not fetched yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from app.config import Settings
from app.kafka.security import kafka_client_options

MIB = 1024 * 1024


class Intake:
    """Reads assigned partitions from chosen offsets; knows which still have lag."""

    def __init__(self, settings: Settings, *, fetch_max_wait_ms: int = 100) -> None:
        self._options: dict[str, Any] = {
            "bootstrap_servers": settings.bootstrap_servers,
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": fetch_max_wait_ms,
            "max_partition_fetch_bytes": MIB,
            **kafka_client_options(settings),
        }
        self._client: AIOKafkaConsumer | None = None

    @property
    def _consumer(self) -> AIOKafkaConsumer:
        if self._client is None:
            raise RuntimeError("the intake is not started")
        return self._client

    async def start(self) -> None:
        """Connect to the brokers (aiokafka clients belong to a running loop)."""
        self._client = AIOKafkaConsumer(**self._options)
        await self._client.start()

    async def stop(self) -> None:
        """Close the connections."""
        if self._client is not None:
            await self._client.stop()

    def assign(self, positions: Mapping[TopicPartition, int]) -> None:
        """Read exactly these partitions, each from its offset; forget everything else."""
        self._consumer.assign(list(positions))
        for tp, offset in positions.items():
            self._consumer.seek(tp, offset)

    async def fetch(
        self, partitions: Iterable[TopicPartition], timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Records of ``partitions`` that arrived, waiting at most ``timeout_ms`` for some."""
        wanted = list(partitions)
        if not wanted:
            return {}
        records: dict[
            TopicPartition, list[ConsumerRecord[Any, Any]]
        ] = await self._consumer.getmany(*wanted, timeout_ms=timeout_ms, max_records=max_records)
        return records

    def position(self, tp: TopicPartition) -> int | None:
        """The next offset this consumer hands out for ``tp`` (``None``: not known yet)."""
        state = self._state(tp)
        return state.position if state is not None and state.has_valid_position else None

    def highwater(self, tp: TopicPartition) -> int | None:
        """The partition's high watermark as of the last fetch (``None``: not fetched yet)."""
        state = self._state(tp)
        return None if state is None else state.highwater

    def has_lag(self, tp: TopicPartition) -> bool:
        """Whether ``tp`` may hold records not handed out yet: behind its high watermark,
        or not fetched once since it was assigned."""
        state = self._state(tp)
        if state is None or not state.has_valid_position or state.highwater is None:
            return True
        return bool(state.position < state.highwater)

    def last_response_ms(self) -> float | None:
        """Wall time (ms) of the newest fetch *response* from the broker, over the assigned
        partitions (``None``: none yet).

        An empty fetch that timed out on a lost broker does not count:
        aiokafka stamps a partition only when a fetch response for it
        arrives, records or not.
        """
        assignment = self._assignment()
        if assignment is None:
            return None
        stamps = [assignment.state_value(tp).timestamp for tp in assignment.tps]
        known = [stamp for stamp in stamps if stamp is not None]
        return float(max(known)) if known else None

    def partition_count(self, topic: str) -> int:
        """How many partitions ``topic`` has, from the consumer's metadata (0: unknown)."""
        return len(self._consumer.partitions_for_topic(topic) or ())

    async def partitions_of(self, topic: str, timeout_s: float) -> int:
        """How many partitions ``topic`` has, asking the brokers if need be (0: unknown)."""
        known = self.partition_count(topic)
        if known:
            return known
        try:
            # aiokafka's consumer has no public call that fetches one topic's metadata.
            wait = self._consumer._client._wait_on_metadata(topic)
            return len(await asyncio.wait_for(wait, timeout_s) or ())
        except (asyncio.TimeoutError, KafkaError):
            return 0

    def _state(self, tp: TopicPartition) -> Any:
        assignment = self._assignment()
        return None if assignment is None else assignment.state_value(tp)

    def _assignment(self) -> Any:
        # aiokafka keeps the position, the last fetched high watermark and the
        # last response time per partition here; its public position() is a
        # coroutine per partition.
        if self._client is None:
            return None
        subscription = self._client._subscription.subscription
        if subscription is None or subscription.assignment is None:
            return None
        return subscription.assignment
