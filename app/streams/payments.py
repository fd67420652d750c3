"""A payment outcome joined with its user's devices: notify, wait for a token, or report.

Every read and write here happens on the user's canonical partition
(``tables``): the payment, its user's tokens and its deduplication record
always meet in the same partition database.
"""

from __future__ import annotations

import logging
from typing import Any

from app.domain.dedup import held, is_held, notified, notified_devices, sent_key
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
    """Notify the user's devices of ``payment`` (event time ``happened_ms``) once each."""
    now = state.advance(happened_ms)
    key = sent_key(payment.payment_id, payment.status)
    sent_record = tables.sent.get(key)
    devices = tokens_of(tables.tokens.get(user_key(payment.user_id)))
    if sent_record is None and not devices:
        if grace_over(happened_ms, now, rules.grace_ms):
            report_no_token(payment)
        else:
            keep_pending(payment, happened_ms, tables, rules)
        tables.sent[key] = held(happened_ms)
    elif is_held(sent_record) or not devices:
        # Seen before and kept pending or reported, or notified to devices
        # that are gone now: a replay changes nothing.
        metrics.duplicates_suppressed.inc()
    else:
        await notify(payment, happened_ms, devices, notified_devices(sent_record), tables, notifier)


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
        report_expired(entry, "over the limit of pending payments per user", "overflow")


async def release_pending(
    user_id: str,
    devices: list[tuple[str, str]],
    now_ms: int,
    tables: PartitionTables,
    rules: Rules,
    notifier: Notifier,
) -> None:
    """Notify the payments waiting for ``user_id``'s token, now that it has ``devices``."""
    key = user_key(user_id)
    entries = tables.pending.get(key)
    if not entries:
        return
    waiting, gone = split_due(entries, now_ms, rules.grace_ms)
    for entry in gone:
        report_expired(entry, "its grace period ended before a token came", "grace")
    for entry in waiting:  # arrival order
        payment = parse_payment(entry["payment"])
        record = tables.sent.get(sent_key(payment.payment_id, payment.status))
        await notify(
            payment, entry["event_time"], devices, notified_devices(record), tables, notifier
        )
    # Only now: after a crash above, the replayed token event finds the
    # payments still pending, and the sent table skips what already went out.
    del tables.pending[key]


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
