"""A payment outcome joined with its user's devices: notify, wait for a token, or report.

Every read and write here happens on the user's canonical partition
(``tables``): the payment, its user's tokens and its deduplication record
always meet in the same partition database.  Deliveries are planned in the
batch's :class:`~app.streams.outbox.Outbox`; :mod:`app.streams.delivery`
sends them and records what became of them.
"""

from __future__ import annotations

import logging
from typing import Any

from app.domain.dedup import held, notified_devices, sent_key
from app.domain.delivery import retry_key
from app.domain.devices import Devices, tokens_of
from app.domain.join import plan_deliveries
from app.domain.messages import render_message, title_of
from app.domain.partitioning import user_key
from app.domain.pending import add_pending, split_due
from app.domain.records import Payment, parse_payment
from app.domain.timing import grace_over
from app.notify.base import Delivery
from app.ops import metrics
from app.streams.context import PartitionTables, Rules
from app.streams.outbox import Outbox
from app.streams.partition import PartitionState

log = logging.getLogger(__name__)


def on_payment(
    payment: Payment,
    happened_ms: int,
    tables: PartitionTables,
    state: PartitionState,
    rules: Rules,
    outbox: Outbox,
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
    if outbox.has(key) or tables.sent.get(key) is not None:
        metrics.duplicates_suppressed.inc()
        return
    devices = tables.tokens.get(user_key(payment.user_id))
    metrics.payments.inc()
    if devices:
        plan(payment, happened_ms, devices, frozenset(), outbox)
        return
    if grace_over(happened_ms, now, rules.grace_ms):
        report_no_token(payment)
    else:
        keep_pending(payment, happened_ms, tables, rules)
    tables.sent[key] = held(happened_ms)


def plan(
    payment: Payment,
    happened_ms: int,
    devices: Devices,
    already_notified: frozenset[str],
    outbox: Outbox,
) -> None:
    """Plan ``payment`` for the ``devices`` not ``already_notified`` (nor planned)."""
    key = sent_key(payment.payment_id, payment.status)
    deliveries, suppressed = plan_deliveries(
        tokens_of(devices), already_notified | outbox.devices(key)
    )
    if suppressed:
        metrics.duplicates_suppressed.inc(suppressed)
    if not deliveries:
        return
    title, body = title_of(payment), render_message(payment)
    amount = str(payment.amount)
    user, pid, status, currency = (
        payment.user_id,
        payment.payment_id,
        payment.status,
        payment.currency,
    )
    for device_id, token in deliveries:
        # Positional: one delivery per notification, and keywords cost a third more.
        platform = devices[device_id].get("platform")
        delivery = Delivery(
            user, device_id, token, platform, title, body, pid, status, amount, currency
        )
        outbox.plan(key, happened_ms, delivery)


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


def release_pending(
    user_id: str,
    devices: Devices,
    now_ms: int,
    tables: PartitionTables,
    rules: Rules,
    outbox: Outbox,
) -> None:
    """Plan the payments waiting for ``user_id``'s devices, to those not notified yet.

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
        handled = notified_devices(tables.sent.get(_sent_key_of(entry))) | frozenset(
            device
            for device in devices
            if tables.retries.get(
                retry_key(payment.user_id, payment.payment_id, payment.status, device)
            )
            is not None
        )
        plan(payment, entry["event_time"], devices, handled, outbox)
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
