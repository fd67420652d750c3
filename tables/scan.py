"""Reading the local RocksDB database of one table partition.

Faust's table API has no per-partition view.  Retention sweeps need one,
because deletes must run inside an event of that same partition (Faust
writes a table change to the current event's partition), and so do the
table sizes of ``/stats`` and ``/metrics``.  This is the one place that
reads the store's databases (pinned faust-streaming 0.15.3 internals).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# Faust keeps each partition's changelog offset inside the same database.
_FAUST_OFFSET_KEY = b"__faust\0offset__"


def _db(table: Any, partition: int) -> Any:
    return getattr(table.data, "_dbs", {}).get(partition)


def scan_partition(
    table: Any, partition: int, after: bytes | None, limit: int
) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` raw ``(key, value)`` pairs of ``partition`` after key ``after``."""
    db = _db(table, partition)
    return [] if db is None else scan_db(db, after, limit)


def scan_db(db: Any, after: bytes | None, limit: int) -> list[tuple[bytes, bytes]]:
    """Up to ``limit`` raw ``(key, value)`` pairs of one partition database after key ``after``."""
    found: list[tuple[bytes, bytes]] = []
    for key, value in db.items(from_key=after):
        if key in (after, _FAUST_OFFSET_KEY):
            continue
        found.append((key, value))
        if len(found) >= limit:
            break
    return found


def local_values(table: Any, partition: int) -> Iterator[bytes]:
    """The raw values of one partition in this worker's local store."""
    db = _db(table, partition)
    if db is None:
        return
    for key, value in db.items():
        if key != _FAUST_OFFSET_KEY:
            yield value


def scan_prefix(table: Any, partition: int, prefix: bytes, limit: int) -> list[bytes]:
    """Up to ``limit`` raw values of ``partition`` whose keys start with ``prefix``."""
    db = _db(table, partition)
    if db is None:
        return []
    found: list[bytes] = []
    for key, value in db.items(from_key=prefix):
        if not key.startswith(prefix) or len(found) >= limit:
            break
        found.append(value)
    return found
