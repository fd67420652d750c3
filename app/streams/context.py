"""What a stream handler works with: one partition's tables and the join's rules.

The handlers (:mod:`app.streams.tokens`, :mod:`app.streams.payments`) take
these as arguments.  In the worker each table is the partition's record
cache (:class:`tables.cache.CachedTable`); in unit tests a plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from app.config import Settings
from app.domain.dedup import SentRecord
from app.domain.devices import Devices
from app.domain.pending import Pending

V = TypeVar("V", contravariant=True)


class Table(Protocol[V]):
    """What a handler does with a table: read, write and delete by key."""

    def get(self, key: bytes, default: Any = None) -> Any: ...

    def __contains__(self, key: object) -> bool: ...

    def __setitem__(self, key: bytes, value: V) -> None: ...

    def __delitem__(self, key: bytes) -> None: ...


@dataclass(frozen=True)
class PartitionTables:
    """The three tables, as seen from one canonical partition."""

    tokens: Table[Devices]
    sent: Table[SentRecord]
    pending: Table[Pending]
    #: Deliveries waiting to be tried again (:mod:`tables.retries`).
    retries: Table[dict[str, Any]]


@dataclass(frozen=True)
class Rules:
    """The join's limits and periods, from the settings."""

    grace_ms: int
    retention_ms: int
    max_devices: int
    max_pending: int
    #: Wall time between two retention sweeps of one partition.
    sweep_every_s: float
    #: Keys a sweep looks at per table: a few milliseconds of reads, so that
    #: a sweep never holds up the batch it follows for long.
    sweep_batch: int = 500

    @classmethod
    def of(cls, settings: Settings) -> Rules:
        """The rules a worker with ``settings`` applies."""
        return cls(
            grace_ms=settings.late_token_grace_seconds * 1000,
            retention_ms=settings.sent_retention_seconds * 1000,
            max_devices=settings.max_devices_per_user,
            max_pending=settings.max_pending_per_user,
            sweep_every_s=float(settings.sweep_interval_seconds),
        )
