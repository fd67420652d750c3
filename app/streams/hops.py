"""The engine's reads: places, forwards as they are read, and the hop's bounds.

:mod:`app.domain.hops` says why the bounds.  Here:

- a public partition's records get their place in its order as they are
  read; those of another worker's partitions are forwarded at the next
  write, not when their turn comes: nothing here decides about them, and the
  worker there can then go as far as this one has *read* (:meth:`Reads.read`);
- a canonical partition's records are split into one merge input per source,
  and the bounds other workers write become bounds of those inputs
  (:meth:`Reads.split`);
- each write takes a :class:`Snapshot`: the forwards read so far, this
  worker's bounds (per source, the place of the last record read while more
  may come, else none), and the offset per input up to which everything is
  processed or forwarded.

With one worker nothing is forwarded, no bounds are written and none are
waited for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aiokafka import TopicPartition

from app.domain.hops import (
    bound_targets,
    decode_bounds,
    encode_bounds,
    expected_sources,
    forward_headers,
    read_headers,
)
from app.domain.ordering import UNKNOWN, Merge, Order
from app.domain.partitioning import user_key
from app.domain.records import InvalidRecord
from app.streams.items import Item
from app.topics import TopicNames

log = logging.getLogger(__name__)

#: How often bounds are written again when they have not moved (news that a worker is alive).
BOUNDS_EVERY_S = 1.0
#: The source of a forwarded record without the source header (written before it existed).
UNKNOWN_SOURCE = -1

#: A record to forward: canonical partition, key, value, timestamp, headers.
Forward = tuple[TopicPartition, bytes, bytes | None, int, list[tuple[str, bytes]]]
Bounds = dict[int, Order | None]
Reader = Callable[[Any, int], tuple[int, int, Item]]


class Input(NamedTuple):
    """A merge input: a partition read in place (``source`` None), or one source of a hop."""

    tp: TopicPartition
    source: int | None = None


@dataclass
class Snapshot:
    """What one write sends besides the tables, and what it makes done."""

    forwards: list[Forward] = field(default_factory=list)
    #: Bounds records: (canonical partition, value, bounds).
    bounds: list[tuple[TopicPartition, bytes, Bounds]] = field(default_factory=list)
    done: dict[TopicPartition, int] = field(default_factory=dict)


class Reads:
    """The reads of one assignment: places, forwards to send, the hop's inputs and bounds."""

    def __init__(self, names: TopicNames, partitions: int, *, skip_local_hops: bool) -> None:
        self._partitions = partitions
        self._skip_local_hops = skip_local_hops
        self._public_of = {
            names.tokens_canonical: names.tokens,
            names.payments_canonical: names.payments,
        }
        self._canonical_of = {public: canonical for canonical, public in self._public_of.items()}
        self._local: list[Input] = []
        self._targets: list[int] = []
        self._inputs: dict[TopicPartition, set[Input]] = {}
        self._bounded: set[Input] = set()
        self._caught_up: set[TopicPartition] = set()
        self._tails: dict[TopicPartition, Order] = {}
        self._fetched_to: dict[TopicPartition, int] = {}
        self._forwards: list[Forward] = []
        self._written: dict[str, tuple[Bounds, float]] = {}

    def plan(
        self,
        inputs: Iterable[TopicPartition],
        owned: Iterable[int],
        sources: Mapping[str, int],
        *,
        wait: bool,
    ) -> tuple[list[Input], dict[Input, Order]]:
        """The merge inputs of an assignment, and the bounds to start them with.

        ``sources``: the partition count of each public topic.  With ``wait``
        every canonical partition waits for the bounds of the sources other
        workers read; without, forwarded records go in their order of arrival.
        """
        inputs = list(inputs)
        owned = sorted(set(owned))
        read_here: dict[str, set[int]] = {}
        bounds: dict[Input, Order] = {}
        self._inputs = {}
        self._written = {}
        self._local = [Input(tp) for tp in inputs if tp.topic not in self._public_of]
        for key in self._local:
            read_here.setdefault(key.tp.topic, set()).add(key.tp.partition)
        merge_inputs = list(self._local)
        for tp in inputs:
            public = self._public_of.get(tp.topic)
            if public is None:
                continue
            split = {Input(tp, UNKNOWN_SOURCE)}
            if wait:
                here = read_here.get(public, set())
                count = sources.get(public, 0)
                for s in expected_sources(tp.partition, count, here, self._skip_local_hops):
                    bounds[Input(tp, s)] = UNKNOWN
                    split.add(Input(tp, s))
            merge_inputs.extend(sorted(split, key=lambda k: k.source or 0))
            self._inputs[tp] = split
        self._targets = (
            bound_targets(self._partitions, owned, self._skip_local_hops) if wait else []
        )
        self._bounded = set(bounds)
        self.rewind()
        return merge_inputs, bounds

    def rewind(self) -> None:
        """The inputs are read again from what is done: forget what was read."""
        self._caught_up = set()
        self._tails = {}
        self._fetched_to = {}
        self._forwards = []

    # --- reading --------------------------------------------------------------

    def read(
        self,
        tp: TopicPartition,
        rows: list[tuple[int, int, Item]],
        route: Callable[[TopicPartition, Item], None],
    ) -> list[tuple[int, int, Item]]:
        """A public partition's parsed records, routed: those processed here, with places.

        The others (``route`` set their ``Item.hop``) are kept to forward at
        the next write.
        """
        if rows:
            self._fetched_to[tp] = rows[-1][2].record.offset + 1
        tail = self._tails.get(tp, UNKNOWN)
        here: list[tuple[int, int, Item]] = []
        canonical = self._canonical_of[tp.topic]
        for row in rows:
            timestamp, rank, item = row
            route(tp, item)
            late = (timestamp, rank) < tail
            if not late:
                tail = (timestamp, rank)
            parsed = item.parsed
            if item.hop is None or isinstance(parsed, InvalidRecord):
                # A late record takes the place of the one before it.
                here.append((tail[0], tail[1], item) if late else row)
                continue
            record = item.record
            self._forwards.append(
                (
                    TopicPartition(canonical, item.hop),
                    user_key(parsed.user_id),
                    record.value,
                    record.timestamp,
                    forward_headers(tp.partition, tail),
                )
            )
        self._tails[tp] = tail
        return here

    def split(
        self,
        tp: TopicPartition,
        records: list[Any],
        read: Reader,
        max_bytes: int,
        merge: Merge[Input, Item],
        now_ms: float,
        route: Callable[[TopicPartition, Item], None],
    ) -> None:
        """Hand a canonical partition's records to the merge, each to its source's input."""
        split = self._inputs.setdefault(tp, set())
        runs: dict[Input, list[tuple[int, int, Item]]] = {}
        for record in records:
            try:
                is_bounds, source, place = read_headers(record.headers)
            except ValueError:
                is_bounds, source, place = False, None, None
            if is_bounds:
                self._bounds(tp, record, split, merge, now_ms)
                continue
            event_ms, rank, item = read(record, max_bytes)
            route(tp, item)
            key = Input(tp, UNKNOWN_SOURCE if source is None else source)
            if place is not None:
                event_ms, rank = place
            runs.setdefault(key, []).append((event_ms, rank, item))
        for key, items in runs.items():
            split.add(key)
            merge.add(key, items, now_ms)
        if records:
            self._fetched_to[tp] = records[-1].offset + 1

    def _bounds(
        self,
        tp: TopicPartition,
        record: Any,
        split: set[Input],
        merge: Merge[Input, Item],
        now_ms: float,
    ) -> None:
        try:
            bounds = decode_bounds(record.value)
        except ValueError:
            log.warning(
                "join: ignored a malformed bounds record %s[%d]@%d",
                record.topic,
                record.partition,
                record.offset,
            )
            return
        for source, bound in bounds.items():
            key = Input(tp, source)
            if key in split:  # a source read here has no bound to wait for
                merge.bound(key, bound, now_ms)

    def has_lag(self, key: Input, lag_of: Callable[[TopicPartition], bool]) -> bool:
        """Whether a hop input must wait for its canonical partition's records not read yet.

        A source with a bound never does: its bound comes after the records it
        covers.  Records without one (written before the bounds existed, or by
        a source not waited for) are waited for until the partition has been
        read to its end once: new ones go in arrival order anyway.
        """
        if key in self._bounded or key.tp in self._caught_up:
            return False
        lag = lag_of(key.tp)
        if not lag:
            self._caught_up.add(key.tp)
        return lag

    def inputs_of(self, tp: TopicPartition) -> set[Input]:
        """The merge inputs a canonical partition is split into (none: a public one)."""
        return self._inputs.get(tp, set())

    def has_room(self, tp: TopicPartition, merge: Merge[Input, Item], limit: int) -> bool:
        """Whether to fetch ``tp``: fewer than ``limit`` of its records buffered.

        A canonical partition is also read on while a source with a bound has
        nothing buffered: the news that bound waits for may be behind the rest.
        """
        split = self._inputs.get(tp)
        if split is None:
            return merge.buffered(Input(tp)) < limit
        return sum(merge.buffered(k) for k in split) < limit or any(
            not merge.buffered(k) for k in split if k in self._bounded
        )

    # --- writing --------------------------------------------------------------

    def snapshot(
        self,
        merge: Merge[Input, Item],
        has_lag: Callable[[Input], bool],
        now_s: float,
        now_ms: float,
    ) -> Snapshot:
        """Take the forwards read so far, the bounds due, and the offsets they make done.

        The bounds cover exactly the forwards taken with them, so the caller
        writes both in one go, bounds after forwards, before anything else is
        read.  The offsets are done once that write (and the batch's) is in
        Kafka.
        """
        snapshot = Snapshot(forwards=self._forwards)
        self._forwards = []
        for key in self._local:
            head = merge.head(key)
            if head is not None:
                snapshot.done[key.tp] = head.record.offset
            elif key.tp in self._fetched_to:
                snapshot.done[key.tp] = self._fetched_to[key.tp]
        for tp, split in self._inputs.items():
            heads = [head.record.offset for k in split if (head := merge.head(k)) is not None]
            if heads:
                snapshot.done[tp] = int(min(heads))
            elif tp in self._fetched_to:
                snapshot.done[tp] = self._fetched_to[tp]
        if self._targets:
            snapshot.bounds = self._bounds_due(merge, has_lag, now_s, now_ms)
        return snapshot

    def _bounds_due(
        self,
        merge: Merge[Input, Item],
        has_lag: Callable[[Input], bool],
        now_s: float,
        now_ms: float,
    ) -> list[tuple[TopicPartition, bytes, Bounds]]:
        per_topic: dict[str, Bounds] = {}
        for key in self._local:
            more = merge.waits(key, has_lag, now_ms)
            bound = self._tails.get(key.tp, UNKNOWN) if more else None
            per_topic.setdefault(self._canonical_of[key.tp.topic], {})[key.tp.partition] = bound
        records: list[tuple[TopicPartition, bytes, Bounds]] = []
        for canonical, bounds in per_topic.items():
            last = self._written.get(canonical)
            if last is not None and last[0] == bounds and now_s - last[1] < BOUNDS_EVERY_S:
                continue
            value = encode_bounds(bounds)
            records.extend((TopicPartition(canonical, p), value, bounds) for p in self._targets)
        return records

    def wrote(self, snapshot: Snapshot, now_s: float) -> None:
        """Kafka has ``snapshot``'s records."""
        for tp, _, bounds in snapshot.bounds:
            self._written[tp.topic] = (bounds, now_s)

    def unsent(self, snapshot: Snapshot) -> None:
        """``snapshot`` could not be written: its forwards go with the next write."""
        self._forwards[:0] = snapshot.forwards
