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

import heapq
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from aiokafka import TopicPartition

from app.domain.records import Payment, TokenEvent
from app.kafka.writer import Writes
from app.streams.context import PartitionTables, Rules
from app.streams.outbox import Outbox
from app.streams.partition import PartitionState
from app.streams.payments import on_payment
from app.streams.retention import sweep
from app.streams.tokens import on_token
from app.topics import PENDING_TABLE, RETRIES_TABLE, SENT_TABLE, TOKENS_TABLE
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
        sweep_offset_s: float = 0.0,
    ) -> None:
        """``sweep_offset_s``: how long after the start the first sweep is due (at once: 0).

        The engine spreads its partitions' offsets over the sweep interval: the
        partitions of one assignment start together, and their sweeps would
        otherwise all fall into the same batches.
        """
        self.partition = partition
        self._stores = dict(stores)
        # The small tables keep their keys in memory: most users have nothing
        # pending and nothing to retry, and asking RocksDB so costs a read.
        self._keys: dict[str, set[bytes]] = {PENDING_TABLE: set(), RETRIES_TABLE: set()}
        self._caches = {
            name: CachedTable(store.get, self._keys.get(name)) for name, store in stores.items()
        }
        self.tables = PartitionTables(
            tokens=self._caches[TOKENS_TABLE],
            sent=self._caches[SENT_TABLE],
            pending=self._caches[PENDING_TABLE],
            retries=self._caches[RETRIES_TABLE],
        )
        self.state = PartitionState(last_sweep=monotonic() - rules.sweep_every_s + sweep_offset_s)
        self._rules = rules
        self._monotonic = monotonic
        #: The deliveries the batch in progress planned.
        self.outbox = Outbox()
        # The retry schedule's due times, in memory: (next_at, key), and the
        # latest time per key (an entry rescheduled leaves a stale heap item).
        self._due: list[tuple[float, bytes]] = []
        self._next_at: dict[bytes, float] = {}
        self._load_schedule()

    def on_token(self, event: TokenEvent, event_ms: int) -> None:
        """Apply a token event of this partition's user (event time ``event_ms``)."""
        on_token(event, event_ms, self.tables, self.state, self._rules, self.outbox)

    def on_payment(self, payment: Payment, event_ms: int) -> None:
        """Join a payment of this partition's user."""
        on_payment(payment, event_ms, self.tables, self.state, self._rules, self.outbox)

    # --- the retry schedule ---------------------------------------------------

    @property
    def retries_waiting(self) -> int:
        """Deliveries in this partition's retry schedule."""
        return len(self._next_at)

    def next_due(self) -> float | None:
        """When the earliest retry of this partition is due, if any."""
        due = self._due
        while due and self._next_at.get(due[0][1]) != due[0][0]:
            heapq.heappop(due)
        return due[0][0] if due else None

    def due_retries(self, now: float) -> Iterator[tuple[bytes, dict[str, Any]]]:
        """The retry entries due by ``now``, each once (it is rescheduled or removed)."""
        due = self._due
        while due and due[0][0] <= now:
            at, key = heapq.heappop(due)
            if self._next_at.get(key) != at:
                continue  # rescheduled or removed since
            value = self.tables.retries.get(key)
            if value is None:
                del self._next_at[key]
                continue
            # Not due again until scheduled again or removed.
            self._next_at[key] = float("inf")
            yield key, value

    def schedule(self, key: bytes, value: dict[str, Any], at: float) -> None:
        """Put a delivery in the retry schedule, due at ``at`` (UNIX seconds)."""
        self.tables.retries[key] = value
        self._index(key, at)

    def unschedule(self, key: bytes) -> None:
        """Take a delivery out of the retry schedule."""
        self._next_at.pop(key, None)
        if key in self.tables.retries:
            del self.tables.retries[key]

    def _index(self, key: bytes, at: float) -> None:
        self._next_at[key] = at
        heapq.heappush(self._due, (at, key))

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
        """Drop the batch's cache and plans, once they are persisted."""
        for cache in self._caches.values():
            cache.clear()
        self.outbox.take()

    def abandon(self) -> None:
        """Drop the batch in progress: it is read again, from what the database holds."""
        self.forget()
        self._load_schedule()

    def _load_schedule(self) -> None:
        self._due = []
        self._next_at = {}
        for name, keys in self._keys.items():
            keys.clear()
            keys.update(key for key, _ in self._stores[name].scan(None, 1 << 30))
        for key, raw in self._stores[RETRIES_TABLE].scan(None, 1 << 30):
            self._index(key, float(orjson.loads(raw)["next_at"]))

    def _scan(self, table: str, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
        return self._stores[table].scan(after, limit)
