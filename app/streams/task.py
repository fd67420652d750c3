"""A partition task: everything the join keeps for one canonical partition.

One :class:`PartitionTask` exists per canonical partition this worker owns;
it is built when an assignment is ready and dropped at the next rebalance.
It owns the partition's tables, each behind a record cache
(:mod:`tables.cache`), its event-time clock and its retention-sweep cursor.
A batch's records go to their task's handlers; at the end of the batch
:meth:`stage` hands the changed keys to the changelogs once each and,
after Kafka has them, :meth:`persist` writes them to RocksDB with the
changelog offset they reach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aiokafka import TopicPartition

from app.domain.records import Payment, TokenEvent
from app.kafka.writer import Writes
from app.notify.base import Outcome
from app.streams.context import PartitionTables, Rules
from app.streams.outbox import Outbox, Planned
from app.streams.partition import PartitionState
from app.streams.payments import on_payment, settle
from app.streams.retention import sweep
from app.streams.tokens import on_token
from app.topics import PENDING_TABLE, SENT_TABLE, TOKENS_TABLE
from tables.cache import CachedTable
from tables.store import PartitionStore

#: Changed keys of each table, encoded, as staged for the changelog.
Staged = dict[str, list[tuple[bytes, bytes | None]]]


class PartitionTask:
    """One canonical partition's tables, clock and sweep cursor."""

    def __init__(
        self,
        partition: int,
        stores: Mapping[str, PartitionStore],
        rules: Rules,
        monotonic: Callable[[], float],
    ) -> None:
        self.partition = partition
        self._stores = dict(stores)
        self._caches = {name: CachedTable(store.get) for name, store in stores.items()}
        self.tables = PartitionTables(
            tokens=self._caches[TOKENS_TABLE],
            sent=self._caches[SENT_TABLE],
            pending=self._caches[PENDING_TABLE],
        )
        self.state = PartitionState()
        self._rules = rules
        self._monotonic = monotonic
        #: The deliveries the batch in progress planned.
        self.outbox = Outbox()

    def on_token(self, event: TokenEvent) -> None:
        """Apply a token event of this partition's user."""
        on_token(event, self.tables, self.state, self._rules, self.outbox)

    def on_payment(self, payment: Payment, event_ms: int) -> None:
        """Join a payment of this partition's user."""
        on_payment(payment, event_ms, self.tables, self.state, self._rules, self.outbox)

    def settle(self, planned: list[Planned], outcomes: list[Outcome]) -> None:
        """Record what the sender made of this task's planned deliveries."""
        settle(self.tables, planned, outcomes)

    def sweep(self) -> None:
        """Drop expired state, if a sweep is due."""
        sweep(self.tables, self.state, self._rules, self._scan, self._monotonic)

    async def stage(self, writes: Writes) -> Staged:
        """Add each key changed in this batch, once, to ``writes`` for its changelog."""
        staged: Staged = {}
        for name, cache in self._caches.items():
            changed = cache.writes()
            if not changed:
                continue
            staged[name] = changed
            tp = TopicPartition(self._stores[name].changelog, self.partition)
            for key, value in changed:
                await writes.add(tp, key, value)
        return staged

    def persist(self, staged: Staged, offsets: Mapping[TopicPartition, int]) -> None:
        """Write the staged keys to RocksDB, with the changelog offset Kafka gave them."""
        for name, changed in staged.items():
            store = self._stores[name]
            store.write(changed, offsets[TopicPartition(store.changelog, self.partition)])
        self.forget()

    def forget(self) -> None:
        """Drop the batch's cache and plans (persisted, or abandoned in a rebalance)."""
        for cache in self._caches.values():
            cache.clear()
        self.outbox.take()

    def _scan(self, table: str, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return self._stores[table].scan(after, limit)
