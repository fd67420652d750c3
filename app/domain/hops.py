"""Forwarding through the canonical topics without losing the order: bounds per source.

A record off its user's partition, on a partition another worker owns, is
forwarded to the canonical topic (:mod:`app.domain.partitioning`).  The
worker that receives it must give it the place one worker reading every
partition would: it must not process its own records past the forwarded
record's place before that record has arrived.  So:

- a worker forwards a record as soon as it has read it (nothing of its own
  state decides about it), with its source partition and its place in that
  source's order (:func:`forward_headers`);
- with every write, and at least every second, each worker writes the
  **bounds** of its sources to every canonical partition it may forward to:
  per source partition, the place of the last record it has read while more
  may come, or ``None`` when it has read everything there is
  (:func:`encode_bounds`).  They follow the forwarded records they cover,
  from the same producer to the same partition, so they arrive after them;
- the receiving merge keeps one input per (canonical partition, source) and
  waits at that source's bound (:meth:`app.domain.ordering.Merge.bound`): it
  goes as far as the forwarding worker has read, not processed.

Each source partition is read by one worker, so its records reach a
canonical partition in their order, whichever worker reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import orjson

from app.domain.ordering import Order

#: Header of a forwarded record: the partition of the public topic it was read from.
SOURCE_HEADER = "pushes-source"
#: Header of a forwarded record: its place in the forwarding worker's order, "ms,rank".
ORDER_HEADER = "pushes-order"
#: Header of a bounds record (its value: :func:`encode_bounds`).
BOUNDS_HEADER = "pushes-bounds"

Headers = Sequence[tuple[str, bytes]]


def forward_headers(source: int, place: Order) -> list[tuple[str, bytes]]:
    """The headers of a record forwarded from partition ``source`` at ``place``."""
    return [
        (SOURCE_HEADER, str(source).encode()),
        (ORDER_HEADER, f"{place[0]},{place[1]}".encode()),
    ]


def read_headers(headers: Headers | None) -> tuple[bool, int | None, Order | None]:
    """``(is a bounds record, source partition, place)`` of a canonical topic's record.

    A record forwarded before these headers existed has neither: ``None, None``.
    """
    source: int | None = None
    place: Order | None = None
    for name, value in headers or ():
        if name == BOUNDS_HEADER:
            return True, None, None
        if name == SOURCE_HEADER:
            source = int(value)
        elif name == ORDER_HEADER:
            ms, rank = value.split(b",")
            place = (int(ms), int(rank))
    return False, source, place


def encode_bounds(bounds: Mapping[int, Order | None]) -> bytes:
    """A bounds record's value: ``{"bounds": {"<source>": [ms, rank] or null}}``."""
    return orjson.dumps({"bounds": {str(s): b and list(b) for s, b in sorted(bounds.items())}})


def decode_bounds(value: bytes | None) -> dict[int, Order | None]:
    """The bounds of a bounds record; ``ValueError`` if it is not one."""
    try:
        data = orjson.loads(value or b"")
        return {
            int(source): None if bound is None else (int(bound[0]), int(bound[1]))
            for source, bound in data["bounds"].items()
        }
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError, AttributeError):
        raise ValueError("not a bounds record") from None


def bound_targets(partitions: int, owned: Collection[int], skip_local_hops: bool) -> list[int]:
    """The canonical partitions this worker's sources may forward to (bounds go there)."""
    return [p for p in range(partitions) if p not in owned or not skip_local_hops]


def expected_sources(
    partition: int, sources: int, read_here: Collection[int], skip_local_hops: bool
) -> list[int]:
    """The source partitions whose bounds canonical ``partition`` (owned here) waits for.

    Every source read by another worker, and, when local hops are not skipped,
    this worker's own sources on other partition numbers.
    """
    return [
        s for s in range(sources) if s not in read_here or not (skip_local_hops or s == partition)
    ]
