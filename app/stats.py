"""What this worker holds: table sizes per partition and consumer lag.

Faust's table API has no per-partition view, so the sizes are read from each
partition's local RocksDB database (pinned faust-streaming 0.15.3 internals,
kept in :func:`local_values`).  Counting walks the local rows: cheap for the
sizes a push-token table has on one worker, and always exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Faust keeps each partition's changelog offset inside the same database.
_FAUST_OFFSET_KEY = b"__faust\0offset__"


@dataclass(frozen=True)
class PartitionSize:
    """Users (keys) and devices of one partition of the tokens table."""

    partition: int
    users: int
    devices: int


def count_users_and_devices(values: Iterable[bytes]) -> tuple[int, int]:
    """``(users, devices)`` for the tokens table's JSON values (device maps)."""
    users = devices = 0
    for raw in values:
        users += 1
        try:
            value = json.loads(raw)
        except ValueError:
            continue  # counted as a user; its devices are unknown
        if isinstance(value, dict):
            devices += len(value)
    return users, devices


def consumer_lag(highwater: int | None, committed: int | None) -> int | None:
    """Records not yet processed on a partition, or ``None`` if unknown.

    ``highwater`` is the offset the next produced record gets; ``committed``
    the offset the group resumes from (Kafka's convention: last processed + 1).
    """
    if highwater is None or committed is None:
        return None
    return max(0, highwater - committed)


def active_partitions(app: Any, table: Any) -> list[int]:
    """The partitions of ``table`` this worker owns (not its standbys)."""
    topic = table.changelog_topic.get_topic_name()
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


def local_values(table: Any, partition: int) -> Iterator[bytes]:
    """The raw values of one partition in this worker's local store."""
    db = getattr(table.data, "_dbs", {}).get(partition)
    if db is None:
        return
    for key, value in db.items():
        if key != _FAUST_OFFSET_KEY:
            yield value


def tokens_table_sizes(app: Any, table: Any) -> list[PartitionSize]:
    """Users and devices of every tokens-table partition this worker owns."""
    sizes = []
    for partition in active_partitions(app, table):
        users, devices = count_users_and_devices(local_values(table, partition))
        sizes.append(PartitionSize(partition, users, devices))
    return sizes


def table_key_counts(app: Any, table: Any) -> dict[int, int]:
    """Keys per owned partition of any table."""
    return {
        partition: sum(1 for _ in local_values(table, partition))
        for partition in active_partitions(app, table)
    }


def partition_lags(app: Any) -> dict[tuple[str, int], int]:
    """Lag of every source partition assigned to this worker's consumer.

    Changelog partitions are left out: the group commits no offsets for
    them, their progress is table recovery (see ``/readyz``).
    """
    consumer = app.consumer
    changelogs = {t.changelog_topic.get_topic_name() for t in app.tables.values()}
    lags = {}
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            continue
        try:
            highwater = consumer.highwater(tp)
        except Exception:  # not fetched yet, or the consumer is restarting
            continue
        lag = consumer_lag(highwater, consumer._committed_offset.get(tp))
        if lag is not None:
            lags[(tp.topic, tp.partition)] = lag
    return lags
