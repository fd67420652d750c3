"""How much this worker holds: users and devices per tokens partition, keys per table.

Counting walks the local rows of each owned partition (:func:`tables.scan.local_values`):
cheap for the sizes a push-token table has on one worker, and always exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tables.scan import local_values

#: A device not registered again for this long is stale (Firebase's term).
STALE_AFTER = timedelta(days=30)


@dataclass(frozen=True)
class PartitionSize:
    """Users (keys), devices and stale devices of one partition of the tokens table."""

    partition: int
    users: int
    devices: int
    stale: int = 0


def count_users_and_devices(values: Iterable[bytes]) -> tuple[int, int]:
    """``(users, devices)`` for the tokens table's JSON values (device maps)."""
    users, devices, _ = count_devices(values, stale_before="")
    return users, devices


def count_devices(values: Iterable[bytes], stale_before: str) -> tuple[int, int, int]:
    """``(users, devices, stale devices)``: stale ones were updated before ``stale_before``.

    ``stale_before`` is an ISO 8601 UTC timestamp as the table stores them,
    so that comparing the strings compares the times.
    """
    users = devices = stale = 0
    for raw in values:
        users += 1
        try:
            value = json.loads(raw)
        except ValueError:
            continue  # counted as a user; its devices are unknown
        if isinstance(value, dict):
            devices += len(value)
            stale += sum(
                1
                for info in value.values()
                if isinstance(info, dict) and str(info.get("updated_at") or "") < stale_before
            )
    return users, devices, stale


def active_partitions(app: Any, table: Any) -> list[int]:
    """The partitions of ``table`` this worker owns (not its standbys)."""
    topic = table.changelog_topic.get_topic_name()
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


def tokens_table_sizes(app: Any, table: Any, now: datetime | None = None) -> list[PartitionSize]:
    """Users, devices and stale devices of every tokens-table partition this worker owns."""
    moment = now or datetime.now(timezone.utc)
    stale_before = (moment - STALE_AFTER).isoformat(timespec="milliseconds")
    sizes = []
    for partition in active_partitions(app, table):
        users, devices, stale = count_devices(local_values(table, partition), stale_before)
        sizes.append(PartitionSize(partition, users, devices, stale))
    return sizes


def table_key_counts(app: Any, table: Any) -> dict[int, int]:
    """Keys per owned partition of any table."""
    return {
        partition: sum(1 for _ in local_values(table, partition))
        for partition in active_partitions(app, table)
    }
