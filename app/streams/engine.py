"""The join's engine: inputs in timestamp order, batches of work, one wait for Kafka each.

The worker's Faust consumer is the group member: it gets the partitions,
recovers the tables and commits offsets.  The engine reads the assigned
input partitions itself (:class:`app.kafka.intake.Intake`, from the
committed offsets once the tables are recovered) and:

1. parses each record once as it arrives (:mod:`app.streams.items`) and
   decides where it goes: a record of a user whose partition this worker
   owns is buffered per input partition; any other is forwarded, with its
   timestamp, source and place, to its user's canonical partition at the
   next write (:mod:`app.streams.hops`); a record no parser accepts stays,
   to be dead-lettered in its turn;
2. takes the buffered records across all its inputs in timestamp order,
   tokens before payments on a tie, waiting for an input that has lag but
   nothing buffered (:mod:`app.domain.ordering`), and at the bounds of the
   sources other workers forward from;
3. processes a batch of them, each in its user's partition task
   (:mod:`app.streams.task`);
4. sends the batch's writes (each task's changed keys once, the forwarded
   records, the bounds of its sources) in record batches and waits until
   Kafka has all of them, writes the tasks' RocksDB batches with the
   changelog offsets, and only then marks the input offsets done (every
   record before them processed or forwarded), for the consumer's next
   commit.

A crash can therefore repeat at most one batch's notifications.  A
rebalance first lets the batch in progress finish (:meth:`Engine.drain`);
the consumer commits before it gives the partitions up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from app.config import Settings
from app.domain.deadletter import SourceRecord
from app.domain.delivery import TokenGoneBreaker
from app.domain.hops import BOUNDS_HEADER
from app.domain.ordering import NEVER_WAIT, Merge, Order
from app.domain.partitioning import hop_target
from app.domain.records import InvalidRecord, Payment
from app.kafka.intake import Intake
from app.kafka.writer import Writer, Writes
from app.notify.base import Sender
from app.ops import metrics
from app.streams.context import Rules
from app.streams.deadletters import DeadLetters
from app.streams.delivery import DeliveryStage
from app.streams.hops import Input, Reads, Snapshot
from app.streams.items import Item, read_payment, read_token
from app.streams.task import PartitionTask, Staged
from app.topics import TABLES, TopicNames
from tables.store import PartitionStore

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Records buffered per input partition before the engine stops fetching it.
BUFFER_PER_INPUT = 5_000
#: Records handed over per fetch.
FETCH_RECORDS = 10_000
#: How long a fetch waits for records when none is ready to process.
IDLE_FETCH_MS = 100
#: How long a fetch made while a batch waits (for the provider, for Kafka) may wait.
FETCH_WHILE_WAITING_MS = 2
#: How long to wait before sending a batch's writes again after Kafka refused them.
RETRY_SEND_S = 1.0
#: How often a Kafka that keeps refusing the writes is logged again.
REFUSED_LOG_EVERY_S = 30.0
#: How long the partition counts of the public topics are waited for at an assignment.
METADATA_TIMEOUT_S = 10.0

#: The headers of a bounds record.
BOUNDS_HEADERS = [(BOUNDS_HEADER, b"1")]


class Progress(Protocol):
    """Where the engine reports the input offsets it has finished (the group member)."""

    def mark_done(self, tp: TopicPartition, next_offset: int) -> None:
        """Everything of ``tp`` before ``next_offset`` is processed and its writes are in Kafka."""

    def committed_offset(self, tp: Any) -> int | None:
        """The offset the group resumes ``tp`` from."""


class Engine:
    """Reads, orders and processes the join's inputs on the partitions this worker owns."""

    def __init__(
        self,
        *,
        settings: Settings,
        names: TopicNames,
        tables: Mapping[str, Any],
        sender: Sender,
        progress: Callable[[], Progress],
        intake: Intake | None = None,
        writer: Writer | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._names = names
        self._tables = dict(tables)
        self.delivery = DeliveryStage(
            sender,
            names,
            self._send_record,
            ttl_s=settings.push_ttl_seconds,
            breaker=TokenGoneBreaker(settings.token_gone_breaker_percent / 100),
        )
        self._progress = progress
        self._rules = Rules.of(settings)
        self.intake = intake or Intake(settings)
        self.writer = writer or Writer(settings)
        self._dead_letters = DeadLetters(settings, self._send_letter)
        self._monotonic = monotonic
        self._batch_max = settings.batch_max_records
        # A record off its user's partition is processed here at once when this
        # worker owns that partition, unless told to measure the hop.
        self._skip_local_hops = settings.skip_local_hops
        self._merge: Merge[Input, Item] = Merge(settings.max_task_idle_ms, settings.hop_wait_ms)
        self._reads = Reads(names, settings.partitions, skip_local_hops=self._skip_local_hops)
        # Bounds of the hop are waited for unless the order is given up anyway.
        self._hop_wait = settings.hop_wait_ms > 0 and settings.max_task_idle_ms != NEVER_WAIT
        self._hop_plan: tuple[list[Input], dict[Input, Order]] = ([], {})
        self._given_up = 0
        self._tasks: dict[int, PartitionTask] = {}
        self._readers = {
            names.tokens: read_token,
            names.tokens_canonical: read_token,
            names.payments: read_payment,
            names.payments_canonical: read_payment,
        }
        self._canonical_topics = names.canonical
        self._assigned: frozenset[TopicPartition] = frozenset()
        #: The Kafka partitions the engine reads (the merge splits canonical ones by source).
        self._inputs: list[TopicPartition] = []
        #: Partitions per input topic, looked up once per assignment.
        self._partition_counts: dict[str, int] = {}
        self._positions: dict[TopicPartition, int] | None = None
        #: Per input partition, the offset up to which everything is done.
        self._done: dict[TopicPartition, int] = {}
        self._generation = 0
        self._live = asyncio.Event()
        self._busy = asyncio.Lock()
        self._started = False
        self._stopping = False
        self._refusals = 0
        self._refused_logged = 0.0

    @property
    def topics(self) -> frozenset[str]:
        """The topics the engine reads (the group member must not fetch them)."""
        return frozenset(self._readers)

    def highwater(self, tp: Any) -> int | None:
        """The high watermark of an input partition, as of the engine's last fetch."""
        return self.intake.highwater(TopicPartition(tp.topic, tp.partition))

    # --- the rebalance protocol (called by the app) -----------------------------

    def on_assigned(self, assigned: Iterable[Any]) -> None:
        """The group gave this worker ``assigned``; the tables are not recovered yet."""
        self._assigned = frozenset(TopicPartition(tp.topic, tp.partition) for tp in assigned)

    def on_ready(self) -> None:
        """The assignment's tables are recovered: read the inputs from the committed offsets."""
        if self._stopping:
            return
        inputs = sorted(tp for tp in self._assigned if tp.topic in self._readers)
        progress = self._progress()
        positions = {tp: progress.committed_offset(tp) or 0 for tp in inputs}
        partitions = sorted({tp.partition for tp in inputs if tp.topic in self._names.canonical})
        spread = self._rules.sweep_every_s / max(1, len(partitions))
        self._tasks = {
            p: PartitionTask(
                p,
                {name: PartitionStore(self._tables[name], p) for name in TABLES},
                self._rules,
                self._monotonic,
                sweep_offset_s=rank * spread,
            )
            for rank, p in enumerate(partitions)
        }
        self._inputs = inputs
        self._partition_counts = {}
        # Another worker may have dead-lettered records of partitions we own now.
        self._dead_letters.forget()
        self._generation += 1
        # Seeked by run(), once the intake has started.
        self._positions = positions
        self._done = dict(positions)
        self._live.set()
        log.info(
            "join: reading %d input partitions for %d table partitions",
            len(inputs),
            len(partitions),
        )

    async def drain(self) -> None:
        """Stop taking records; let the batch in progress finish; forget the assignment."""
        self._live.clear()
        self._generation += 1
        async with self._busy:
            for task in self._tasks.values():
                task.abandon()
            self._tasks = {}
            self._positions = None
            self._inputs = []
            self._hop_plan = ([], {})
            self._merge.assign((), self._now_ms())

    # --- life cycle -----------------------------------------------------------

    async def run(self) -> None:
        """Process batches until stopped (the app runs this as a task)."""
        await self.delivery.sender.start()
        await self.intake.start()
        await self.writer.start()
        self._started = True
        while not self._stopping:
            await self._live.wait()
            if self._stopping:
                break
            generation = self._generation
            async with self._busy:
                if self._positions is not None:
                    self.intake.assign(self._positions)
                    self._positions = None
                    await self._plan_hops()
                if generation == self._generation and self._live.is_set():
                    try:
                        await self._step(generation)
                    except KafkaError as exc:
                        # Nothing of the batch is marked done: read it again.
                        self._refused(exc)
                        self._rewind()
                        await asyncio.sleep(RETRY_SEND_S)

    async def stop(self) -> None:
        """Finish the batch in progress and close the clients."""
        self._stopping = True
        await self.drain()
        self._live.set()  # wake run() so that it ends
        if self._started:
            await self.writer.stop()
            await self.intake.stop()
            await self.delivery.sender.close()

    # --- one step -------------------------------------------------------------

    async def _plan_hops(self) -> None:
        """Split the canonical partitions by source, waiting for the bounds of other workers'."""
        sources: dict[str, int] = {}
        if self._hop_wait:
            for topic in (self._names.tokens, self._names.payments):
                sources[topic] = await self.intake.partitions_of(topic, METADATA_TIMEOUT_S)
                if not sources[topic]:
                    log.warning(
                        "join: the partitions of %s are not known; records other workers "
                        "forward from it take their place when they arrive",
                        topic,
                    )
        self._hop_plan = self._reads.plan(self._inputs, self._tasks, sources, wait=self._hop_wait)
        inputs, bounds = self._hop_plan
        self._merge.assign(inputs, self._now_ms(), bounds)

    def _has_lag(self, key: Input) -> bool:
        if key.source is None:
            return self.intake.has_lag(key.tp)
        return self._reads.has_lag(key, self.intake.has_lag)

    async def _step(self, generation: int) -> None:
        merge = self._merge
        has_lag = self._has_lag
        ready = merge.take(self._batch_max, has_lag, self._now_ms())
        if not ready:
            await self._fetch(self._idle_wait_ms())
            ready = merge.take(self._batch_max, has_lag, self._now_ms())
        elif len(ready) < self._batch_max:
            await self._fetch(0)
            ready += merge.take(self._batch_max - len(ready), has_lag, self._now_ms())
        if merge.bounds_given_up != self._given_up:
            self._gave_up(merge.bounds_given_up - self._given_up)
        if generation != self._generation:
            return
        if ready or self._retries_due():
            await self._process(ready, generation)
        else:
            await self._announce(generation)
        metrics.retries_waiting.set(sum(t.retries_waiting for t in self._tasks.values()))

    def _gave_up(self, count: int) -> None:
        self._given_up += count
        metrics.hop_waits_given_up.inc(count)
        log.warning(
            "join: no news for %.1f s from a worker that forwards records here; going on "
            "without it (a payment it forwards later may meet later token events)",
            self._settings.hop_wait_ms / 1000,
        )

    async def _announce(self, generation: int) -> None:
        """Outside any batch: write the forwards read and the bounds due; mark what is done."""
        snapshot = self._snapshot()
        if snapshot.forwards or snapshot.bounds:
            writes = self.writer.writes()
            try:
                await self._add_snapshot(writes, snapshot)
                await writes.send()
            except KafkaError as exc:
                self._reads.unsent(snapshot)
                self._refused(exc)
                return
            self._reads.wrote(snapshot, time.time())
        if generation == self._generation:
            self._mark_done(snapshot.done)

    def _snapshot(self) -> Snapshot:
        return self._reads.snapshot(self._merge, self._has_lag, time.time(), self._now_ms())

    @staticmethod
    async def _add_snapshot(writes: Writes, snapshot: Snapshot) -> None:
        for tp, key, value, timestamp, headers in snapshot.forwards:
            await writes.add(tp, key, value, timestamp, headers)
        # After the forwarded records they cover, on the same partitions.
        for tp, value, _ in snapshot.bounds:
            await writes.add(tp, None, value, headers=BOUNDS_HEADERS)

    def _mark_done(self, done: dict[TopicPartition, int]) -> None:
        progress = self._progress()
        for tp, offset in done.items():
            progress.mark_done(tp, offset)
        self._done.update(done)

    def _idle_wait_ms(self) -> int:
        """How long an idle fetch may wait: until the next retry is due, at most IDLE_FETCH_MS."""
        due = [at for task in self._tasks.values() if (at := task.next_due()) is not None]
        if not due:
            return IDLE_FETCH_MS
        return max(0, min(IDLE_FETCH_MS, int((min(due) - time.time()) * 1000)))

    def _retries_due(self) -> bool:
        now = time.time()
        return any((at := t.next_due()) is not None and at <= now for t in self._tasks.values())

    async def _fetch(self, timeout_ms: int) -> None:
        merge = self._merge
        wanted = self._wanted()
        if not wanted:  # no input (an empty assignment), or all of them full
            await asyncio.sleep(timeout_ms / 1000)
            return
        fetched = await self.intake.fetch(wanted, timeout_ms, FETCH_RECORDS)
        max_bytes = self._settings.max_record_bytes
        canonical = self._canonical_topics
        now_ms = self._now_ms()
        for tp, records in fetched.items():
            read = self._readers[tp.topic]
            if tp.topic in canonical:
                self._reads.split(tp, records, read, max_bytes, merge, now_ms, self._route)
            else:
                rows = [read(record, max_bytes) for record in records]
                here = self._reads.read(tp, rows, self._route)
                merge.add(Input(tp), here, now_ms, placed=True)

    def _route(self, tp: TopicPartition, item: Item) -> None:
        """Where ``item`` (read from ``tp``) is processed: its user's partition, here or there.

        Decided when it is read: a record for another worker's partition is
        forwarded at the next write, whatever this worker's own order.
        """
        parsed = item.parsed
        if isinstance(parsed, InvalidRecord):
            item.target = tp.partition
            return
        partition = self._place(tp, parsed.user_id)
        item.target = partition
        if partition not in self._tasks or not (partition == tp.partition or self._skip_local_hops):
            item.hop = partition

    async def _process(self, batch: list[tuple[Input, Order, Item]], generation: int) -> None:
        for _, _, item in batch:
            parsed = item.parsed
            if isinstance(parsed, InvalidRecord):
                await self._dead_letter(item.record, parsed)
            elif isinstance(parsed, Payment):
                self._tasks[item.target].on_payment(parsed, item.event_ms)
            else:
                self._tasks[item.target].on_token(parsed, item.event_ms)
        for owned in self._tasks.values():
            if owned.state.stream_time:
                owned.sweep()
        # Every task: any of them may have retries due.
        await self._meanwhile_fetch(self.delivery.deliver(self._tasks.values()))
        snapshot = self._snapshot()
        if await self._meanwhile_fetch(self._write(snapshot, self._tasks.values(), generation)):
            self._mark_done(snapshot.done)

    async def _meanwhile_fetch(self, work: Awaitable[T]) -> T:
        """Run ``work`` (waiting for a provider or for Kafka); meanwhile fetch and parse.

        Reading and parsing the next records needs no partition state, so it
        fills the batch's waits instead of following them.
        """
        job = asyncio.ensure_future(work)
        while not job.done():
            if not self._wanted():
                break
            await asyncio.wait({job}, timeout=0)
            if job.done():
                break
            await self._fetch(FETCH_WHILE_WAITING_MS)
        return await job

    def _wanted(self) -> list[TopicPartition]:
        """The inputs with room in their buffers."""
        merge = self._merge
        return [tp for tp in self._inputs if self._reads.has_room(tp, merge, BUFFER_PER_INPUT)]

    def _place(self, tp: TopicPartition, user_id: str) -> int:
        """The canonical partition of a record's user (its own, if it is there already)."""
        if tp.topic in self._canonical_topics:
            return int(tp.partition)
        count = self._partition_counts.get(tp.topic)
        if not count:
            count = self.intake.partition_count(tp.topic)
            if count:
                self._partition_counts[tp.topic] = count
        target = hop_target(
            user_id,
            partition=tp.partition,
            source_partitions=count,
            table_partitions=self._settings.partitions,
        )
        return int(tp.partition) if target is None else target

    async def _write(
        self, snapshot: Snapshot, tasks: Iterable[PartitionTask], generation: int
    ) -> bool:
        """Send the batch's writes until Kafka has them all, then persist the tables.

        ``False`` when a rebalance took the partitions while Kafka refused them:
        nothing is persisted or marked done, and the next owner does it again.
        """
        tasks = list(tasks)
        while True:
            writes = self.writer.writes()
            await self._add_snapshot(writes, snapshot)
            staged: list[tuple[PartitionTask, Staged]] = [
                (task, await task.stage(writes)) for task in tasks
            ]
            try:
                offsets = await writes.send() if writes else {}
            except KafkaError as exc:
                if generation != self._generation or self._stopping:
                    return False
                self._refused(exc)
                await asyncio.sleep(RETRY_SEND_S)
                continue
            if self._refusals:
                log.info("join: Kafka took the writes again after %d failures", self._refusals)
                self._refusals = 0
            for task, changed in staged:
                task.persist(changed, offsets)
            self._reads.wrote(snapshot, time.time())
            return True

    def _rewind(self) -> None:
        """Forget the batch in progress and read again from what is done."""
        for task in self._tasks.values():
            task.abandon()
        inputs, bounds = self._hop_plan
        self._merge.assign(inputs, self._now_ms(), bounds)
        self._reads.rewind()
        self.intake.assign(self._done)

    def _refused(self, exc: KafkaError) -> None:
        # Once, then every REFUSED_LOG_EVERY_S while Kafka keeps failing.
        self._refusals += 1
        now = self._monotonic()
        if self._refusals == 1 or now - self._refused_logged >= REFUSED_LOG_EVERY_S:
            self._refused_logged = now
            log.warning(
                "join: Kafka failed the batch in progress (%r), %d times so far; trying again",
                exc,
                self._refusals,
            )

    async def _dead_letter(self, record: Any, error: InvalidRecord) -> None:
        source = SourceRecord(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
        )
        if await self._dead_letters.send(source, error):
            metrics.dead_letters.labels(record.topic, error.code).inc()
            log.warning(
                "dead-lettered invalid record %s[%d]@%d: %s",
                record.topic,
                record.partition,
                record.offset,
                error,
            )

    async def _send_letter(self, key: bytes, value: bytes) -> None:
        await self.writer.send_one(self._names.dead_letters, key, value)

    async def _send_record(self, topic: str, key: bytes, value: bytes) -> None:
        await self.writer.send_one(topic, key, value)

    def _now_ms(self) -> float:
        return self._monotonic() * 1000
