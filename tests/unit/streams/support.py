"""In-memory partition tasks for the stream tests: the real task, cache and delivery stage."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal

from aiokafka import TopicPartition

from app.domain.delivery import TokenGoneBreaker
from app.domain.records import Payment, TokenEvent
from app.notify.base import Delivery, Outcome
from app.streams.context import PartitionTables, Rules
from app.streams.delivery import DeliveryStage
from app.streams.partition import PartitionState
from app.streams.task import PartitionTask
from app.topics import TABLES, TopicNames

MINUTE = 60_000
RULES = Rules(
    grace_ms=10 * MINUTE,
    retention_ms=60 * MINUTE,
    max_devices=3,
    max_pending=2,
    sweep_every_s=30.0,
)


class Recorder:
    """A sender that records what it sent; ``answers`` script the outcome per token."""

    name = "recorder"

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[str, str]] = []
        self.attempts: list[Delivery] = []
        self.answers: dict[str, Outcome] = {t: Outcome.retry("UNAVAILABLE") for t in failing}

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def send(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        outcomes = []
        for d in deliveries:
            self.attempts.append(d)
            outcome = self.answers.get(d.token, Outcome.delivered())
            if outcome.ok:
                self.sent.append((d.token, d.body))
            outcomes.append(outcome)
        return outcomes


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class MemoryStore:
    """A table partition's database in memory: what PartitionTask reads and writes."""

    def __init__(self, name: str) -> None:
        self.changelog = f"{name}-changelog"
        self.data: dict[bytes, bytes] = {}
        self.offset: int | None = None

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def scan(self, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        keys = sorted(k for k in self.data if after is None or k > after)[:limit]
        return [(k, self.data[k]) for k in keys]

    def write(self, writes, changelog_offset: int) -> None:
        for key, value in writes:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        self.offset = changelog_offset


class Partition:
    """One partition task on in-memory stores, with what the engine does at a batch's end."""

    def __init__(self, sender: Recorder | None = None, rules: Rules = RULES) -> None:
        self.stores = {name: MemoryStore(name) for name in TABLES}
        self.monotonic = Clock()
        self.task = PartitionTask(0, self.stores, rules, self.monotonic)  # type: ignore[arg-type]
        self.sender = sender or Recorder()
        self.records: list[tuple[str, bytes, bytes]] = []
        self.clock = 1_000_000.0
        self.stage = DeliveryStage(
            self.sender,
            TopicNames("app", "tokens", "payments", "dlq", "undeliverable"),
            self._record,
            ttl_s=3600,
            breaker=TokenGoneBreaker(0.5),
            clock=lambda: self.clock,
            rng=random.Random(1),
        )
        self.rules = rules

    async def _record(self, topic: str, key: bytes, value: bytes) -> None:
        self.records.append((topic, key, value))

    @property
    def tables(self) -> PartitionTables:
        return self.task.tables

    @property
    def state(self) -> PartitionState:
        return self.task.state

    @property
    def sent(self) -> list[tuple[str, str]]:
        return self.sender.sent

    async def token(self, device: str, tok: str | None, at_ms: int, user: str = "u1") -> None:
        when = datetime.fromtimestamp(at_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
        self.task.on_token(TokenEvent(user, device, tok, "android", when), at_ms)
        await self.end_batch()

    async def payment(
        self, pid: str, at_ms: int, *, batch_end: bool = True, user: str = "u1"
    ) -> None:
        p = Payment(pid, user, "succeeded", Decimal("100"), "RUB")
        self.task.on_payment(p, at_ms)
        if batch_end:
            await self.end_batch()

    async def end_batch(self) -> None:
        """Deliver, then persist the batch as the engine does after Kafka has its writes."""
        await self.stage.deliver([self.task])
        writes = self.task._caches
        staged = {name: cache.writes() for name, cache in writes.items() if cache.writes()}
        offsets = {TopicPartition(self.stores[name].changelog, 0): 1 for name in staged}
        self.task.persist(staged, offsets)
