"""The dead-letter envelope: a record no code path can process, kept for people.

Each dead letter is keyed ``<source topic>/<source partition>`` (so the letters
of one source partition stay in order on one dead-letter partition) and holds a
JSON envelope with the original key and value bytes (base64), the source
topic, partition, offset and timestamp, the reason and when it was written.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from app.domain.records import InvalidRecord


@dataclass(frozen=True)
class SourceRecord:
    """Where a bad record came from, and its original bytes."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None


def letter_key(source: SourceRecord) -> bytes:
    """The dead letter's Kafka key: one source partition, one ordered stream."""
    return f"{source.topic}/{source.partition}".encode()


def envelope(source: SourceRecord, error: InvalidRecord, now: datetime) -> dict[str, Any]:
    """The JSON body of a dead letter."""
    return {
        "source": {
            "topic": source.topic,
            "partition": source.partition,
            "offset": source.offset,
            "timestamp_ms": source.timestamp_ms,
        },
        "key_base64": _b64(source.key),
        "value_base64": _b64(source.value),
        "reason": str(error),
        "reason_code": error.code,
        "dead_lettered_at": now.astimezone(timezone.utc).isoformat(timespec="milliseconds"),
    }


def highest_offsets(envelopes: Iterable[bytes]) -> dict[tuple[str, int], int]:
    """The highest source offset per source partition among raw dead letters."""
    highest: dict[tuple[str, int], int] = {}
    for raw in envelopes:
        try:
            src = json.loads(raw)["source"]
            tp, offset = (str(src["topic"]), int(src["partition"])), int(src["offset"])
        except (ValueError, KeyError, TypeError):
            continue  # not one of ours; someone else wrote to the topic
        if offset > highest.get(tp, -1):
            highest[tp] = offset
    return highest


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")
