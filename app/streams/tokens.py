"""A token event applied to its user's devices, releasing payments that waited for one."""

from __future__ import annotations

import logging

from app.domain.devices import Devices, apply_token_event
from app.domain.partitioning import user_key
from app.domain.records import TokenEvent
from app.ops import metrics
from app.streams.context import PartitionTables, Rules
from app.streams.outbox import Outbox
from app.streams.partition import PartitionState
from app.streams.payments import release_pending

log = logging.getLogger(__name__)


def on_token(
    event: TokenEvent,
    event_ms: int,
    tables: PartitionTables,
    state: PartitionState,
    rules: Rules,
    outbox: Outbox,
) -> None:
    """Apply a registration or removal (of event time ``event_ms``); release pending payments."""
    now = state.advance(event_ms)
    devices = apply_token(event, tables, rules)
    if devices:
        release_pending(event.user_id, devices, now, tables, rules, outbox)


def apply_token(event: TokenEvent, tables: PartitionTables, rules: Rules) -> Devices:
    """Write the user's devices after ``event``; return them."""
    key = user_key(event.user_id)
    before = tables.tokens.get(key)
    devices, evicted = apply_token_event(before, event, rules.max_devices)
    for device_id in evicted:
        log.warning(
            "user %s has over %d devices: evicted device %s, the oldest",
            event.user_id,
            rules.max_devices,
            device_id,
        )
        metrics.tokens_removed.labels("evicted").inc()
    if event.token is not None:
        metrics.tokens_registered.inc()
    elif before and event.device_id in before and event.device_id not in devices:
        # A bounded label: the reason is free text in a record.
        cause = "unregistered" if event.reason == "unregistered" else "deleted"
        metrics.tokens_removed.labels(cause).inc()
    if devices:
        tables.tokens[key] = devices
    elif key in tables.tokens:
        del tables.tokens[key]
    return devices
