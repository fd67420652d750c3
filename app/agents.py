"""The stream processors: tokens into the table, payments joined against it.

Flow per record::

    push-tokens ─(hop unless on the user's partition)─> pushes-tokens-canonical ─> table
    payments    ─(hop unless on the user's partition)─> pushes-payments-canonical ─> join
    join ─> notifier (one line per device)

Both agents parse raw bytes with :mod:`app.models`, so a malformed record is
reported and skipped instead of killing the agent.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import EventT, TopicT

from app.application import app
from app.config import settings
from app.messages import render_message
from app.models import InvalidRecord, decode_json, parse_payment, parse_token_event
from app.notifier import LogNotifier, Notifier
from app.partitioning import hop_target, user_key
from app.topics import (
    CANONICAL_TOPICS,
    payment_sources,
    payments_canonical_topic,
    token_sources,
    tokens_canonical_topic,
)
from tables.tokens import apply_token_event, tokens_of, tokens_table

log = logging.getLogger(__name__)

notifier: Notifier = LogNotifier()


@app.agent(token_sources)
async def process_tokens(stream: faust.StreamT[Any]) -> None:
    """Apply registrations and removals to the tokens table."""
    async for event in stream.events():
        try:
            token_event = parse_token_event(
                decode_json(event.message.value, settings.max_record_bytes)
            )
        except InvalidRecord as exc:
            _report_invalid(event, exc)
            continue
        if await _moved_to_canonical(event, token_event.user_id, tokens_canonical_topic):
            continue
        key = user_key(token_event.user_id)
        devices, evicted = apply_token_event(
            tokens_table.get(key),
            token_event,
            settings.max_devices_per_user,
        )
        for device_id in evicted:
            log.warning(
                "user %s has over %d devices: evicted device %s, the oldest",
                token_event.user_id,
                settings.max_devices_per_user,
                device_id,
            )
        if devices:
            tokens_table[key] = devices
        elif key in tokens_table:
            del tokens_table[key]


@app.agent(payment_sources)
async def process_payments(stream: faust.StreamT[Any]) -> None:
    """Notify every device of the paying user about the payment's outcome."""
    async for event in stream.events():
        try:
            payment = parse_payment(decode_json(event.message.value, settings.max_record_bytes))
        except InvalidRecord as exc:
            _report_invalid(event, exc)
            continue
        if await _moved_to_canonical(event, payment.user_id, payments_canonical_topic):
            continue
        devices = tokens_of(tokens_table.get(user_key(payment.user_id)))
        if not devices:
            log.info(
                "no push token for user %s: payment %s (%s) not notified",
                payment.user_id,
                payment.payment_id,
                payment.status,
            )
            continue
        message = render_message(payment)
        for _device_id, token in devices:
            await notifier.send(token, message)


async def _moved_to_canonical(event: EventT[Any], user_id: str, target: TopicT) -> bool:
    """Forward the record to its user's partition of ``target`` if it is not there.

    Returns ``True`` when the record was forwarded (and Kafka has it), so the
    caller must not process it here.
    """
    message = event.message
    if message.topic in CANONICAL_TOPICS:
        return False
    partition = hop_target(
        user_id,
        partition=message.partition,
        source_partitions=app.consumer.topic_partitions(message.topic) or 0,
        table_partitions=settings.partitions,
    )
    if partition is None:
        return False
    # Await the delivery, not just the enqueue: the source offset is committed
    # after we return, and a record only in the send buffer would be lost.
    sent = await target.send(key=user_key(user_id), value=message.value, partition=partition)
    await sent
    return True


def _report_invalid(event: EventT[Any], exc: InvalidRecord) -> None:
    message = event.message
    log.warning(
        "skipping invalid record %s[%d]@%d: %s",
        message.topic,
        message.partition,
        message.offset,
        exc,
    )
