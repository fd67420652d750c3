"""The two agents: tokens into the table, payments joined against it.

Flow per record::

    push-tokens ─(hop unless on the user's partition)─> pushes-tokens-canonical ─> table
    payments    ─(hop unless on the user's partition)─> pushes-payments-canonical ─> join
    join ─> notifier (one line per device; one sent record per payment outcome)

Each record is parsed (bad ones are dead-lettered), placed on its user's
canonical partition (:mod:`app.streams.placement`), then handled there on
that partition's tables (:mod:`app.streams.tokens`,
:mod:`app.streams.payments`), with a retention sweep when one is due
(:mod:`app.streams.retention`).  Records go through in batches
(:mod:`app.streams.batches`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import Any

import faust
from faust.types import TopicT

from app.config import Settings
from app.domain.join import event_time_ms
from app.domain.records import parse_payment, parse_token_event
from app.notify.base import Notifier
from app.streams.batches import Batches
from app.streams.context import PartitionTables, Rules
from app.streams.deadletters import DeadLetters, parse_or_dead_letter
from app.streams.partition import Partitions
from app.streams.payments import on_payment
from app.streams.placement import Placement
from app.streams.retention import sweep
from app.streams.tokens import on_token
from app.topics import Topics
from tables.scan import scan_partition
from tables.store import on_partition


class Join:
    """Everything the two agents need, and what they do with one record."""

    def __init__(
        self,
        *,
        settings: Settings,
        topics: Topics,
        tables: PartitionTables,
        notifier: Notifier,
        dead_letters: DeadLetters,
        placement: Placement,
    ) -> None:
        self.rules = Rules.of(settings)
        self.topics = topics
        self.tables = tables
        self.notifier = notifier
        self.dead_letters = dead_letters
        self.placement = placement
        self.partitions = Partitions()
        self._max_record_bytes = settings.max_record_bytes

    async def handle_token(self, record: Any, deliveries: list[Awaitable[Any]]) -> None:
        """Parse, place and apply one token record."""
        event = await parse_or_dead_letter(
            record, parse_token_event, self.dead_letters, self._max_record_bytes
        )
        if event is None:
            return
        target = self.topics.tokens_canonical
        partition = await self.placement.place(record, event.user_id, target, deliveries)
        if partition is None:
            return
        with on_partition(target.get_topic_name(), partition):
            state = self.partitions[partition]
            await on_token(event, self.tables, state, self.rules, self.notifier)
            self._sweep(partition)

    async def handle_payment(self, record: Any, deliveries: list[Awaitable[Any]]) -> None:
        """Parse, place and join one payment record."""
        payment = await parse_or_dead_letter(
            record, parse_payment, self.dead_letters, self._max_record_bytes
        )
        if payment is None:
            return
        target = self.topics.payments_canonical
        partition = await self.placement.place(record, payment.user_id, target, deliveries)
        if partition is None:
            return
        with on_partition(target.get_topic_name(), partition):
            state = self.partitions[partition]
            happened = event_time_ms(payment, record.timestamp)
            await on_payment(payment, happened, self.tables, state, self.rules, self.notifier)
            self._sweep(partition)

    def _sweep(self, partition: int) -> None:
        sweep(
            partition,
            self.tables,
            self.partitions[partition],
            self.rules,
            scan_partition,
            time.monotonic,
        )

    def on_assigned(self, assigned: frozenset[Any]) -> None:
        """A new assignment: rebuild the partition state, read dead letters back again."""
        self.placement.assigned = assigned
        canonical = self.topics.names.canonical
        self.partitions.assign({tp.partition for tp in assigned if tp.topic in canonical})
        # Another worker may have dead-lettered records of partitions we now own.
        self.dead_letters.forget()


def register(app: faust.App, topics: Topics, join: Join, batches: Batches) -> None:
    """Declare the two agents on ``app``."""

    async def process_tokens(stream: faust.StreamT[Any]) -> None:
        """Apply registrations and removals to the tokens table."""
        await batches.run(stream, join.handle_token)

    async def process_payments(stream: faust.StreamT[Any]) -> None:
        """Notify every device of the paying user about the payment's outcome."""
        await batches.run(stream, join.handle_payment)

    sources: list[tuple[TopicT, Any]] = [
        (topics.token_sources, process_tokens),
        (topics.payment_sources, process_payments),
    ]
    for channel, function in sources:
        app.agent(channel, name=function.__name__)(function)
