"""A record cache in front of one table partition (Kafka Streams' KIP-63).

Within a batch the join reads and writes a partition's tables through a
:class:`CachedTable`: a read looks in the cache first, then in the
partition's database; writes stay in the cache.  At the end of the batch
:meth:`CachedTable.writes` gives each changed key once, with its last value,
which goes to the changelog and then, in one write batch, to RocksDB.  A key
written ten times in a batch costs one changelog record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

_ABSENT = object()  # a read found nothing (cached, so it is not asked again)
_DELETED = object()  # the batch deleted the key


class CachedTable:
    """One table partition seen through the batch's cache; values are JSON-able objects.

    A small table can keep the set of its keys in memory (``keys``): a read of
    a key not in it then costs no database read.  The set must hold every key
    of the database; the table keeps it up to date with its own writes.
    """

    def __init__(
        self, read: Callable[[bytes], bytes | None], keys: set[bytes] | None = None
    ) -> None:
        self._read = read
        self._keys = keys
        self._values: dict[bytes, Any] = {}
        self._dirty: set[bytes] = set()

    def get(self, key: bytes, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        value = self._values.get(key, _ABSENT) if key in self._values else self._load(key)
        return default if value is _ABSENT or value is _DELETED else value

    def __getitem__(self, key: bytes) -> Any:
        value = self.get(key, _ABSENT)
        if value is _ABSENT:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key, _ABSENT) is not _ABSENT

    def __setitem__(self, key: bytes, value: Any) -> None:
        self._values[key] = value
        self._dirty.add(key)
        if self._keys is not None:
            self._keys.add(key)

    def __delitem__(self, key: bytes) -> None:
        if key not in self:
            raise KeyError(key)
        self._values[key] = _DELETED
        self._dirty.add(key)
        if self._keys is not None:
            self._keys.discard(key)

    def writes(self) -> list[tuple[bytes, bytes | None]]:
        """Each key changed since the last :meth:`clear`, encoded (``None``: deleted)."""
        return [
            (key, None if (value := self._values[key]) is _DELETED else orjson.dumps(value))
            for key in sorted(self._dirty)
        ]

    def clear(self) -> None:
        """Forget the cache (the writes are in the database now, or abandoned)."""
        self._values.clear()
        self._dirty.clear()

    def _load(self, key: bytes) -> Any:
        if self._keys is not None and key not in self._keys:
            self._values[key] = _ABSENT
            return _ABSENT
        raw = self._read(key)
        value = _ABSENT if raw is None else orjson.loads(raw)
        self._values[key] = value
        return value
