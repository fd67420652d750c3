"""Retention sweeps: expired pending payments and old deduplication records leave the store.

Sweeps run inside the stream, after a batch's records, at most every
``Rules.sweep_every_s`` of wall time per partition, and look at a bounded
number of keys of each table each time, continuing where the last one
stopped: a sweep is a short step, never a stall.  The partitions' steps are
spread over the interval (see :class:`app.streams.task.PartitionTask`), so
that one batch does not pay for all of them at once.  What is old is decided
on the partition's event time, never the wall clock.
"""

from __future__ import annotations

from collections.abc import Callable

from app.domain.dedup import event_time
from app.domain.pending import split_due
from app.domain.timing import past_retention
from app.streams.context import PartitionTables, Rules
from app.streams.partition import PartitionState
from app.streams.payments import expire_pending

#: Reads up to ``limit`` raw ``(key, value)`` pairs of the partition's table
#: ``"pending"`` or ``"sent"`` from its database, after a key.
Scan = Callable[[str, bytes | None, int], list[tuple[bytes, bytes]]]


def sweep(
    tables: PartitionTables,
    state: PartitionState,
    rules: Rules,
    scan: Scan,
    monotonic: Callable[[], float],
) -> None:
    """Drop expired pending payments and sent records of a partition, if a sweep is due."""
    wall = monotonic()
    if wall - state.last_sweep < rules.sweep_every_s:
        return
    state.last_sweep = wall
    now = state.stream_time
    # The scan finds the keys in the database; their values are read through
    # the tables, which may hold newer ones written by the batch in progress.
    pending, state.pending_cursor = _step(scan, "pending", state.pending_cursor, rules.sweep_batch)
    for key, _ in pending:
        waiting, gone = split_due(tables.pending.get(key), now, rules.grace_ms)
        if not gone:
            continue
        expire_pending(gone, tables)
        if waiting:
            tables.pending[key] = waiting
        else:
            del tables.pending[key]
    sent, state.sent_cursor = _step(scan, "sent", state.sent_cursor, rules.sweep_batch)
    for key, _ in sent:
        record = tables.sent.get(key)
        if record is not None and past_retention(event_time(record), now, rules.retention_ms):
            del tables.sent[key]


def _step(
    scan: Scan, table: str, cursor: bytes | None, limit: int
) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """The next ``limit`` keys of ``table`` after ``cursor``, and where the step after goes on."""
    batch = scan(table, cursor, limit)
    return batch, (batch[-1][0] if len(batch) == limit else None)
