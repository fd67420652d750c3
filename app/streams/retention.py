"""Retention sweeps: expired pending payments and old deduplication records leave the store.

Sweeps run inside the stream, on the partition being processed, at most every
``Rules.sweep_every_s`` of wall time per partition, and look at a bounded
number of keys each time, so they never stall it.  What is old is decided on
the partition's event time, never the wall clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.domain.dedup import event_time
from app.domain.pending import split_due
from app.domain.timing import past_retention
from app.streams.context import PartitionTables, Rules
from app.streams.partition import PartitionState
from app.streams.payments import report_expired

#: Reads up to ``limit`` raw ``(key, value)`` pairs of one partition of a table,
#: after a key (:func:`tables.scan.scan_partition`).
Scan = Callable[[Any, int, bytes | None, int], list[tuple[bytes, bytes]]]


def sweep(
    partition: int,
    tables: PartitionTables,
    state: PartitionState,
    rules: Rules,
    scan: Scan,
    monotonic: Callable[[], float],
) -> None:
    """Drop expired pending payments and sent records of ``partition``, if a sweep is due."""
    wall = monotonic()
    if wall - state.last_sweep < rules.sweep_every_s:
        return
    state.last_sweep = wall
    now = state.stream_time
    for key, raw in scan(tables.pending, partition, None, rules.sweep_batch):
        waiting, gone = split_due(json.loads(raw), now, rules.grace_ms)
        if not gone:
            continue
        for entry in gone:
            report_expired(entry, "its grace period ended before a token came", "grace")
        if waiting:
            tables.pending[key] = waiting
        else:
            del tables.pending[key]
    batch = scan(tables.sent, partition, state.sent_cursor, rules.sweep_batch)
    state.sent_cursor = batch[-1][0] if len(batch) == rules.sweep_batch else None
    for key, raw in batch:
        if past_retention(event_time(json.loads(raw)), now, rules.retention_ms):
            del tables.sent[key]
