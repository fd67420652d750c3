"""How much this worker holds: users and devices per tokens partition, keys per table.

Counting walks the local rows of each owned partition (:func:`tables.scan.local_values`):
cheap for the sizes a push-token table has on one worker, and always exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tables.scan import local_values


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


def active_partitions(app: Any, table: Any) -> list[int]:
    """The partitions of ``table`` this worker owns (not its standbys)."""
    topic = table.changelog_topic.get_topic_name()
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


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
