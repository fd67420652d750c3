"""Reading the local RocksDB database of one table partition, in key order.

Faust's table API has no per-partition iteration; retention sweeps need one,
because deletes must run inside an event of that same partition (Faust writes
a table change to the current event's partition).  This is the one place that
reaches into the store's internals (pinned faust-streaming 0.15.3).
"""

from __future__ import annotations

from typing import Any

# Faust keeps each partition's changelog offset inside the same database.
_FAUST_OFFSET_KEY = b"__faust\0offset__"


def scan_partition(
    table: Any, partition: int, *, after: bytes | None, limit: int
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` raw ``(key, value)`` pairs of ``partition`` after key ``after``."""
    store = table.data
    db = store._dbs.get(partition)
    if db is None:
        return []
    found: list[tuple[bytes, bytes]] = []
    for key, value in db.items(from_key=after):
        if key in (after, _FAUST_OFFSET_KEY):
            continue
        found.append((key, value))
        if len(found) >= limit:
            break
    return found
