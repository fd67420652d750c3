"""A payment outcome joined with its user's devices: notify, wait for a token, or report.

Every read and write here happens on the user's canonical partition
(``tables``): the payment, its user's tokens and its deduplication record
always meet in the same partition database.
"""

from __future__ import annotations

import logging
from typing import Any

from app.domain.dedup import held, notified, notified_devices, sent_key
from app.domain.devices import tokens_of
from app.domain.join import plan_deliveries
from app.domain.messages import render_message
from app.domain.partitioning import user_key
from app.domain.pending import add_pending, split_due
from app.domain.records import Payment, parse_payment
from app.domain.timing import grace_over
from app.notify.base import Notifier
from app.ops import metrics
from app.streams.context import PartitionTables, Rules
from app.streams.partition import PartitionState

log = logging.getLogger(__name__)


async def on_payment(
    payment: Payment,
    happened_ms: int,
    tables: PartitionTables,
    state: PartitionState,
    rules: Rules,
    notifier: Notifier,
) -> None:
    """Notify the devices ``payment``'s user has at its event time ``happened_ms``.

    Inputs are processed in event-time order, so the tokens table holds
    exactly the devices registered before the payment.  A user without any
    waits for one within the grace period (see :func:`release_pending`).  A
    payment outcome seen before (a duplicate, a replay) changes nothing: its
    first processing decided who gets it, whatever has been registered since.
    """
    now = state.advance(happened_ms)
    key = sent_key(payment.payment_id, payment.status)
    if tables.sent.get(key) is not None:
        metrics.duplicates_suppressed.inc()
        return
    devices = tokens_of(tables.tokens.get(user_key(payment.user_id)))
    if devices:
        await notify(payment, happened_ms, devices, frozenset(), tables, notifier)
        return
    if grace_over(happened_ms, now, rules.grace_ms):
        report_no_token(payment)
    else:
        keep_pending(payment, happened_ms, tables, rules)
    tables.sent[key] = held(happened_ms)


async def notify(
    payment: Payment,
    happened_ms: int,
    devices: list[tuple[str, str]],
    already_notified: frozenset[str],
    tables: PartitionTables,
    notifier: Notifier,
) -> None:
    """Send ``payment`` to the ``devices`` not ``already_notified``, and remember them."""
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
        # record (awaited once per batch) repeats these lines.
        key = sent_key(payment.payment_id, payment.status)
        tables.sent[key] = notified(happened_ms, already_notified | sent)


def keep_pending(payment: Payment, happened_ms: int, tables: PartitionTables, rules: Rules) -> None:
    """Let ``payment`` wait for its user's first token, within the grace period."""
    key = user_key(payment.user_id)
    entries, dropped = add_pending(
        tables.pending.get(key), payment.to_json(), happened_ms, rules.max_pending
    )
    tables.pending[key] = entries
    metrics.payments_pending.inc()
    log.info(
        "no push token for user %s yet: payment %s (%s) waits up to %ds for one",
        payment.user_id,
        payment.payment_id,
        payment.status,
        rules.grace_ms // 1000,
    )
    for entry in dropped:
        if not notified_devices(tables.sent.get(_sent_key_of(entry))):
            report_expired(entry, "over the limit of pending payments per user", "overflow")


async def release_pending(
    user_id: str,
    devices: list[tuple[str, str]],
    now_ms: int,
    tables: PartitionTables,
    rules: Rules,
    notifier: Notifier,
) -> None:
    """Send the payments waiting for ``user_id``'s devices to those not notified yet.

    Every device registered within a payment's grace period gets it, not
    only the first: a payment stays pending until its grace period ends, and
    its sent record lists the devices already notified.
    """
    key = user_key(user_id)
    entries = tables.pending.get(key)
    if not entries:
        return
    waiting, gone = split_due(entries, now_ms, rules.grace_ms)
    expire_pending(gone, tables)
    for entry in waiting:  # arrival order
        payment = parse_payment(entry["payment"])
        record = tables.sent.get(sent_key(payment.payment_id, payment.status))
        await notify(
            payment, entry["event_time"], devices, notified_devices(record), tables, notifier
        )
    if gone:
        if waiting:
            tables.pending[key] = waiting
        else:
            del tables.pending[key]


def expire_pending(entries: list[dict[str, Any]], tables: PartitionTables) -> None:
    """Report the pending payments whose grace ended without any device notified."""
    for entry in entries:
        if not notified_devices(tables.sent.get(_sent_key_of(entry))):
            report_expired(entry, "its grace period ended before a token came", "grace")


def report_no_token(payment: Payment) -> None:
    """Count and log a payment whose user has no device."""
    metrics.payments_without_token.inc()
    log.info(
        "no push token for user %s: payment %s (%s) not notified",
        payment.user_id,
        payment.payment_id,
        payment.status,
    )


def report_expired(entry: dict[str, Any], why: str, cause: str) -> None:
    """Count and log a pending payment dropped for ``why``."""
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


def _sent_key_of(entry: dict[str, Any]) -> bytes:
    """The deduplication key of a pending entry's payment outcome."""
    payment = entry["payment"]
    return sent_key(payment["payment_id"], payment["status"])
