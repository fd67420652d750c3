"""What a stream handler works with: one partition's tables and the join's rules.

The handlers (:mod:`app.streams.tokens`, :mod:`app.streams.payments`) take
these as arguments.  In the worker the tables are Faust tables, whose reads
and writes go to the partition of the record being processed
(:func:`tables.store.on_partition`); in unit tests they are plain dicts.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from app.config import Settings
from app.domain.dedup import SentRecord
from app.domain.devices import Devices
from app.domain.pending import Pending


@dataclass(frozen=True)
class PartitionTables:
    """The three tables, as seen from one canonical partition."""

    tokens: MutableMapping[bytes, Devices]
    sent: MutableMapping[bytes, SentRecord]
    pending: MutableMapping[bytes, Pending]


@dataclass(frozen=True)
class Rules:
    """The join's limits and periods, from the settings."""

    grace_ms: int
    retention_ms: int
    max_devices: int
    max_pending: int
    #: Wall time between two retention sweeps of one partition.
    sweep_every_s: float
    #: Keys a sweep looks at per table, so it never stalls the stream.
    sweep_batch: int = 5_000

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
