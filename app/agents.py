"""The stream processors: tokens into the table, payments joined against it.

Flow per record::

    push-tokens ─(hop unless on the user's partition)─> pushes-tokens-canonical ─> table
    payments    ─(hop unless on the user's partition)─> pushes-payments-canonical ─> join
    join ─> notifier (one line per device; one sent record per payment outcome)

There is no hop either when this worker owns the user's partition: the record
is then processed right away on that partition's tables.

Both agents parse raw bytes with :mod:`app.models`; a record that fails goes
to the dead-letter topic and processing goes on.  Everything a payment
touches (tokens, sent, pending) lives on its user's canonical partition, so
every table read and write below happens in that one partition database.

Records are processed in batches (``PUSHES_BATCH_MAX_RECORDS``); each batch
waits once until Kafka has everything it wrote, then its offsets are acked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar, cast

import faust
from faust.streams import _current_event, current_event
from faust.types import TP, TopicT

from app import metrics
from app.application import PushesEvent, app
from app.config import settings
from app.continuity import OffsetTracker, read_range
from app.deadletters import DeadLetters, SourceRecord
from app.join import event_time_ms, plan_deliveries, within_grace
from app.messages import render_message
from app.models import (
    InvalidRecord,
    Payment,
    TokenEvent,
    decode_json,
    parse_payment,
    parse_token_event,
)
from app.notifier import LogNotifier, Notifier
from app.partitioning import hop_target, user_key
from app.topics import (
    CANONICAL_TOPICS,
    dead_letter_topic,
    payment_sources,
    payments_canonical_topic,
    token_sources,
    tokens_canonical_topic,
)
from app.transport import Consumer
from tables.pending import add_pending, pending_table, split_due
from tables.scan import scan_partition
from tables.sent import (
    event_time,
    expired,
    held,
    is_held,
    notified,
    notified_devices,
    sent_key,
    sent_table,
)
from tables.tokens import apply_token_event, tokens_of, tokens_table

log = logging.getLogger(__name__)

T = TypeVar("T")

GRACE_MS = settings.late_token_grace_seconds * 1000
RETENTION_MS = settings.sent_retention_seconds * 1000
# Retention sweeps run inside events, at most this often per partition, and
# look at a bounded number of keys each time so they never stall the stream.
SWEEP_EVERY_S = float(settings.sweep_interval_seconds)
SWEEP_BATCH = 5_000
BATCH_WAIT_S = settings.batch_wait_ms / 1000

notifier: Notifier = LogNotifier(fields=settings.log_format == "json")
dead_letters = DeadLetters(settings, dead_letter_topic)
offsets = OffsetTracker(lambda tp: _consumer().committed_offset(tp))

# Event time per canonical partition: the newest event time seen there.
_stream_time: dict[int, int] = {}
_last_sweep: dict[int, float] = {}
_sent_cursor: dict[int, bytes | None] = {}
# The partitions this worker consumes (see _on_assigned).
_assigned: frozenset[TP] = frozenset()


@app.agent(token_sources)
async def process_tokens(stream: faust.StreamT[Any]) -> None:
    """Apply registrations and removals to the tokens table."""
    await _process(stream, _handle_token)


@app.agent(payment_sources)
async def process_payments(stream: faust.StreamT[Any]) -> None:
    """Notify every device of the paying user about the payment's outcome."""
    await _process(stream, _handle_payment)


Handler = Callable[[Any, list[Awaitable[Any]]], Awaitable[None]]


async def _process(stream: faust.StreamT[Any], handle: Handler) -> None:
    """Hand every record of ``stream`` to ``handle``, with any the consumer skipped.

    Records come in batches.  ``handle`` appends the deliveries Kafka must
    acknowledge (forwarded records) to a list; once per batch we wait for
    those and for the sent table's changelog, and only then do the batch's
    events get acked (by ``take_events``) and become committable.  One wait
    per batch instead of one per payment is most of the join's throughput.
    """
    # StreamT does not declare take_events; every agent stream is a faust.Stream,
    # and its events are PushesEvents (the app's Event class).
    batches = cast(faust.Stream[Any], stream).take_events(
        settings.batch_max_records, within=BATCH_WAIT_S
    )
    async for taken in batches:
        events = cast(list[PushesEvent], taken)
        deliveries: list[Awaitable[Any]] = []
        processed: list[tuple[Any, range]] = []
        for event in events:
            if event.is_stale():
                continue  # not acked either: fetched again, or read as a hole
            # Table reads and writes go to the database of this event's partition.
            _current_event.set(weakref.ref(event))
            records, skipped = await _with_skipped(event.message)
            for record in records:
                if event.is_stale():
                    break  # a rebalance came while we waited: the next owner does the rest
                await handle(record, deliveries)
            else:
                processed.append((event.message.tp, skipped))
        _current_event.set(None)
        await asyncio.gather(*deliveries)
        await sent_table.acknowledged()
        consumer = _consumer()
        for tp, skipped in processed:
            consumer.mark_processed(tp, skipped)


async def _with_skipped(message: Any) -> tuple[list[Any], range]:
    """The records to process for ``message`` (any the consumer skipped, then it),
    and the skipped offsets, to count as processed once they are."""
    hole = offsets.hole_before(message.tp, message.offset)
    if hole is None:
        return [message], range(0)
    first, end = hole
    skipped = await read_range(settings, message.tp, first, end)
    log.warning(
        "%s[%d]: offsets %d..%d were not delivered; processing the %d records read directly",
        message.topic,
        message.partition,
        first,
        end - 1,
        len(skipped),
    )
    return [*skipped, message], range(first, end)


def _consumer() -> Consumer:
    return cast(Consumer, app.consumer)


async def _handle_token(record: Any, deliveries: list[Awaitable[Any]]) -> None:
    token_event = await _parse(record, parse_token_event)
    if token_event is None:
        return
    partition = await _place(record, token_event.user_id, tokens_canonical_topic, deliveries)
    if partition is None:
        return
    with _tables_on(tokens_canonical_topic, partition):
        now = _advance(partition, _iso_ms(token_event.updated_at))
        devices = _apply_token(token_event)
        if devices:
            await _release_pending(token_event.user_id, devices, now)
        await _sweep(partition)


async def _handle_payment(record: Any, deliveries: list[Awaitable[Any]]) -> None:
    payment = await _parse(record, parse_payment)
    if payment is None:
        return
    partition = await _place(record, payment.user_id, payments_canonical_topic, deliveries)
    if partition is None:
        return
    with _tables_on(payments_canonical_topic, partition):
        await _join(payment, partition, record.timestamp)
        await _sweep(partition)


async def _join(payment: Payment, partition: int, record_timestamp: float | None) -> None:
    happened = event_time_ms(payment, record_timestamp)
    now = _advance(partition, happened)
    key = sent_key(payment.payment_id, payment.status)
    sent_record = sent_table.get(key)
    devices = tokens_of(tokens_table.get(user_key(payment.user_id)))
    if sent_record is None and not devices:
        if within_grace(happened, now, GRACE_MS):
            _keep_pending(payment, happened)
        else:
            _report_no_token(payment)
        sent_table[key] = held(happened)
    elif is_held(sent_record) or not devices:
        # Seen before and kept pending or reported, or notified to devices
        # that are gone now: a replay changes nothing.
        metrics.duplicates_suppressed.inc()
    else:
        await _notify(payment, happened, devices, notified_devices(sent_record))


def _apply_token(token_event: TokenEvent) -> list[tuple[str, str]]:
    key = user_key(token_event.user_id)
    devices, evicted = apply_token_event(
        tokens_table.get(key), token_event, settings.max_devices_per_user
    )
    for device_id in evicted:
        log.warning(
            "user %s has over %d devices: evicted device %s, the oldest",
            token_event.user_id,
            settings.max_devices_per_user,
            device_id,
        )
        metrics.tokens_removed.labels("evicted").inc()
    if token_event.token is None:
        metrics.tokens_removed.labels("deleted").inc()
    else:
        metrics.tokens_registered.inc()
    if devices:
        tokens_table[key] = devices
    elif key in tokens_table:
        del tokens_table[key]
    return tokens_of(devices)


async def _notify(
    payment: Payment,
    happened_ms: int,
    devices: list[tuple[str, str]],
    already_notified: frozenset[str],
) -> None:
    deliveries, suppressed = plan_deliveries(devices, already_notified)
    if suppressed:
        metrics.duplicates_suppressed.inc(suppressed)
    if not deliveries:
        return
    message = render_message(payment)
    sent: set[str] = set()
    for delivery in deliveries:
        try:
            await notifier.send(
                delivery.token, message, payment_id=payment.payment_id, user_id=payment.user_id
            )
        except Exception:
            # A real sender can fail for one device; the others still get theirs.
            metrics.notifications.labels("failed").inc()
            log.exception(
                "sending payment %s to device %s of user %s failed",
                payment.payment_id,
                delivery.device_id,
                payment.user_id,
            )
            continue
        sent.add(delivery.device_id)
        metrics.notifications.labels("sent").inc()
    if sent:
        # Remembered right after the sends.  A crash before Kafka has this
        # record (awaited once per batch, in _process) repeats these lines.
        key = sent_key(payment.payment_id, payment.status)
        sent_table[key] = notified(happened_ms, already_notified | sent)


def _keep_pending(payment: Payment, happened_ms: int) -> None:
    key = user_key(payment.user_id)
    entries, dropped = add_pending(
        pending_table.get(key), payment.to_json(), happened_ms, settings.max_pending_per_user
    )
    pending_table[key] = entries
    metrics.payments_pending.inc()
    log.info(
        "no push token for user %s yet: payment %s (%s) waits up to %ds for one",
        payment.user_id,
        payment.payment_id,
        payment.status,
        settings.late_token_grace_seconds,
    )
    for entry in dropped:
        _report_expired(entry, "over the limit of pending payments per user", "overflow")


async def _release_pending(user_id: str, devices: list[tuple[str, str]], now_ms: int) -> None:
    key = user_key(user_id)
    entries = pending_table.get(key)
    if not entries:
        return
    waiting, gone = split_due(entries, now_ms, GRACE_MS)
    for entry in gone:
        _report_expired(entry, "its grace period ended before a token came", "grace")
    for entry in waiting:  # arrival order
        payment = parse_payment(entry["payment"])
        record = sent_table.get(sent_key(payment.payment_id, payment.status))
        await _notify(payment, entry["event_time"], devices, notified_devices(record))
    # Only now: after a crash above, the replayed token event finds the
    # payments still pending, and the sent table skips what already went out.
    del pending_table[key]


def _report_no_token(payment: Payment) -> None:
    metrics.payments_without_token.inc()
    log.info(
        "no push token for user %s: payment %s (%s) not notified",
        payment.user_id,
        payment.payment_id,
        payment.status,
    )


def _report_expired(entry: dict[str, Any], why: str, cause: str) -> None:
    payment = entry["payment"]
    metrics.payments_without_token.inc()
    metrics.pending_expired.labels(cause).inc()
    log.info(
        "no push token for user %s: payment %s (%s) dropped, %s",
        payment["user_id"],
        payment["payment_id"],
        payment["status"],
        why,
    )


async def _sweep(partition: int) -> None:
    """Drop expired pending payments and sent records of this partition."""
    wall = time.monotonic()
    if wall - _last_sweep.get(partition, 0.0) < SWEEP_EVERY_S:
        return
    _last_sweep[partition] = wall
    now = _stream_time[partition]
    for key, raw in scan_partition(pending_table, partition, after=None, limit=SWEEP_BATCH):
        waiting, gone = split_due(json.loads(raw), now, GRACE_MS)
        if not gone:
            continue
        for entry in gone:
            _report_expired(entry, "its grace period ended before a token came", "grace")
        if waiting:
            pending_table[key] = waiting
        else:
            del pending_table[key]
    batch = scan_partition(
        sent_table, partition, after=_sent_cursor.get(partition), limit=SWEEP_BATCH
    )
    _sent_cursor[partition] = batch[-1][0] if len(batch) == SWEEP_BATCH else None
    for key, raw in batch:
        if expired(event_time(json.loads(raw)), now, RETENTION_MS):
            del sent_table[key]


def _advance(partition: int, event_ms: int) -> int:
    now = max(_stream_time.get(partition, 0), event_ms)
    _stream_time[partition] = now
    return now


def _iso_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


async def _parse(message: Any, parse: Callable[[Any], T]) -> T | None:
    """The parsed record, or ``None`` after dead-lettering it."""
    try:
        return parse(decode_json(message.value, settings.max_record_bytes))
    except InvalidRecord as exc:
        source = SourceRecord(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
            key=message.key,
            value=message.value,
        )
        if await dead_letters.send(source, exc):
            metrics.dead_letters.labels(message.topic, exc.code).inc()
            log.warning(
                "dead-lettered invalid record %s[%d]@%d: %s",
                message.topic,
                message.partition,
                message.offset,
                exc,
            )
        return None


async def _place(
    message: Any, user_id: str, target: TopicT, deliveries: list[Awaitable[Any]]
) -> int | None:
    """The partition whose tables the record is processed on here, or ``None``
    when it was forwarded to its user's partition of ``target`` instead.

    A record off its user's partition is forwarded (its delivery appended to
    ``deliveries``) unless this worker owns that partition: then it is
    processed right away on that partition's tables, saving the hop.
    """
    if message.topic in CANONICAL_TOPICS:
        return int(message.partition)
    partition = hop_target(
        user_id,
        partition=message.partition,
        source_partitions=app.consumer.topic_partitions(message.topic) or 0,
        table_partitions=settings.partitions,
    )
    if partition is None:
        return int(message.partition)
    if settings.skip_local_hops and TP(target.get_topic_name(), partition) in _assigned:
        return partition
    # The batch waits for the delivery, not just the enqueue, before its
    # source offsets are committed: a record only in a send buffer would be lost.
    sent = await target.send(
        key=user_key(user_id),
        value=message.value,
        partition=partition,
        timestamp=message.timestamp,
    )
    deliveries.append(sent)
    return None


@dataclass(frozen=True)
class _OnPartition:
    """Stands in for the current event so that Faust's tables use ``message.partition``."""

    message: Any


@contextmanager
def _tables_on(canonical: TopicT, partition: int) -> Iterator[None]:
    """Make table reads and writes use ``partition``'s databases and changelog.

    Faust takes the partition from the current event, which is the source
    record's; a record processed for a partition it was not read from (see
    :func:`_place`) needs the other one, as if read from ``canonical``
    (Faust checks that topic's partition count against the tables').
    """
    event = current_event()
    topic = canonical.get_topic_name()
    if event is None or (event.message.topic, event.message.partition) == (topic, partition):
        yield
        return
    message = event.message
    stand_in = _OnPartition(
        SimpleNamespace(
            topic=topic,
            partition=partition,
            tp=TP(topic, partition),
            offset=message.offset,
            timestamp=message.timestamp,
        )
    )
    reset = _current_event.set(weakref.ref(stand_in))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(reset)


@app.on_partitions_assigned.connect
async def _on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
    # Looked up per record by _place; the assignment only changes in a rebalance.
    global _assigned
    _assigned = frozenset(app.consumer.assignment())
    # Another worker may have dead-lettered records of partitions we now own.
    dead_letters.forget()
    # Every partition restarts at its committed offset.
    offsets.reset()
