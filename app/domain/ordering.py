"""Which buffered record goes next: the smallest timestamp among the inputs' heads.

Kafka Streams processes a task's input partitions in timestamp order
(KIP-353): among the first buffered record of each input it always takes
the one with the smallest timestamp, and it does not guess about an input
with nothing buffered.  An empty input whose position is below its high
watermark has records on their way, so the task waits for them (KIP-695,
``max.task.idle.ms=0``).  An empty input with no known lag may still get
records from a late producer: ``max.task.idle.ms > 0`` waits that long for
it, ``-1`` never waits, not even for known lag.

:class:`Merge` is that rule over any inputs.  Each record comes with its
order key ``(timestamp_ms, rank)``: the rank breaks ties (token events
before payments, so a token and a payment of the same millisecond meet in
the order the user would expect).  Within one input, records keep their
offset order whatever their timestamps, as in Kafka Streams: a record's
**place** in the order is the largest key of its input up to it
(:meth:`Merge.take` returns it), so a late record follows the one before it.

An input may also have a **bound** instead of lag (:meth:`Merge.bound`): it
has nothing buffered, and what it gets next will not go before the bound.
Records below the bound go on; the merge waits at the bound for news of that
input, at most ``bound_wait_ms``.  The join uses it for the records another
worker forwards (:mod:`app.domain.hops`).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

#: An order key: (event time in ms, tie-break rank).
Order = tuple[int, int]

#: Tie-break ranks: at equal timestamps a token event goes before a payment.
TOKEN_RANK = 0
PAYMENT_RANK = 1

#: A bound below every record: nothing is known of the input yet.
UNKNOWN: Order = (-(1 << 62), TOKEN_RANK)

#: ``max_idle_ms`` that never waits, not even for an input with known lag.
NEVER_WAIT = -1

# Heap entries: (timestamp, rank, kind, sequence, input); a record goes
# before a bound of the same key.
_RECORD = 0
_BOUND = 1


class Merge(Generic[K, T]):
    """Per-input buffers, taken in timestamp order across inputs."""

    def __init__(self, max_idle_ms: int = 0, bound_wait_ms: int = 0) -> None:
        if max_idle_ms < NEVER_WAIT:
            raise ValueError("max_idle_ms must be -1, 0 or more")
        if bound_wait_ms < 0:
            raise ValueError("bound_wait_ms must be 0 or more")
        self.max_idle_ms = max_idle_ms
        self.bound_wait_ms = bound_wait_ms
        #: Bounds given up on, because no news came within ``bound_wait_ms``.
        self.bounds_given_up = 0
        self._buffers: dict[K, deque[tuple[int, int, T]]] = {}
        self._empty_since: dict[K, float] = {}
        # The largest key added of each input: the place of its last record.
        self._tails: dict[K, Order] = {}
        # Inputs with a bound: (bound, since when it holds).
        self._bounds: dict[K, tuple[Order, float]] = {}
        # The heap entry of each input's bound that is current.
        self._bound_entries: dict[K, int] = {}
        self._heads: list[tuple[int, int, int, int, K]] = []
        self._sequence = 0

    def assign(
        self, inputs: Iterable[K], now_ms: float, bounds: Mapping[K, Order] | None = None
    ) -> None:
        """Start over with ``inputs``, all empty (a new assignment), some with ``bounds``."""
        self._buffers = {key: deque() for key in inputs}
        self._empty_since = dict.fromkeys(self._buffers, now_ms)
        self._tails = {}
        self._bounds = {}
        self._bound_entries = {}
        self._heads = []
        for key, bound in (bounds or {}).items():
            self.bound(key, bound, now_ms)

    @property
    def inputs(self) -> list[K]:
        """The inputs, in the order they were assigned (or first added)."""
        return list(self._buffers)

    def buffered(self, key: K) -> int:
        """How many records of ``key`` wait in its buffer."""
        buffer = self._buffers.get(key)
        return len(buffer) if buffer is not None else 0

    def head(self, key: K) -> T | None:
        """The next record of ``key``, if one is buffered."""
        buffer = self._buffers.get(key)
        return buffer[0][2] if buffer else None

    def __len__(self) -> int:
        return sum(len(buffer) for buffer in self._buffers.values())

    def add(
        self,
        key: K,
        records: Sequence[tuple[int, int, T]],
        now_ms: float = 0,
        *,
        placed: bool = False,
    ) -> None:
        """Append ``(timestamp_ms, rank, record)`` of ``key``, in offset order.

        ``placed``: the keys are places already (never below the key before).
        An input not assigned is added (a source first heard of).
        """
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = deque()
            self._empty_since[key] = now_ms
        was_empty = not buffer
        tail = self._tails.get(key, UNKNOWN)
        if placed:
            buffer.extend(records)
            if records:
                tail = max(tail, (records[-1][0], records[-1][1]))
        else:
            append = buffer.append
            for row in records:
                if (row[0], row[1]) >= tail:
                    tail = (row[0], row[1])
                    append(row)
                else:  # a late record: it takes the place of the one before it
                    append((tail[0], tail[1], row[2]))
        self._tails[key] = tail
        if key in self._bounds:
            self._bounds[key] = (self._bounds[key][0], now_ms)  # news of it
        if was_empty and buffer:
            self._bound_entries.pop(key, None)
            self._push_head(key, buffer)

    def bound(self, key: K, bound: Order | None, now_ms: float) -> None:
        """What ``key`` gets next goes no earlier than ``bound`` (``None``: nothing to wait for)."""
        if key not in self._buffers:
            self._buffers[key] = deque()
            self._empty_since[key] = now_ms
        self._bound_entries.pop(key, None)
        if bound is None:
            self._bounds.pop(key, None)
            return
        self._bounds[key] = (bound, now_ms)
        if not self._buffers[key]:
            self._push_bound(key)

    def take(
        self, limit: int, has_lag: Callable[[K], bool], now_ms: float
    ) -> list[tuple[K, Order, T]]:
        """Up to ``limit`` records in timestamp order, stopping where the order is unknown.

        Each comes as ``(input, its place in the order, record)``.
        ``has_lag(key)`` says whether an input has records on the broker
        that are not buffered yet (its position is below its high watermark,
        or is not known yet).  Nothing is taken while an empty input must be
        waited for; taking stops as soon as one becomes empty that must be,
        and at a bound.
        """
        if any(not buffer and self._must_wait(k, has_lag, now_ms) for k, buffer in self._items()):
            return []
        taken: list[tuple[K, Order, T]] = []
        heads = self._heads
        while heads and len(taken) < limit:
            timestamp, rank, kind, sequence, key = heads[0]
            if kind == _BOUND:
                if self._bound_entries.get(key) != sequence:
                    heapq.heappop(heads)  # the input got records or news since
                elif now_ms - self._bounds[key][1] < self.bound_wait_ms:
                    break
                else:
                    heapq.heappop(heads)
                    del self._bound_entries[key], self._bounds[key]
                    self.bounds_given_up += 1
                continue
            heapq.heappop(heads)
            buffer = self._buffers[key]
            record = buffer.popleft()[2]
            taken.append((key, (timestamp, rank), record))
            if buffer:
                self._push_head(key, buffer)
            else:
                self._empty_since[key] = now_ms
                if key in self._bounds:
                    self._push_bound(key)
                if self._must_wait(key, has_lag, now_ms):
                    break
        return taken

    def waits(self, key: K, has_lag: Callable[[K], bool], now_ms: float) -> bool:
        """Whether more records of ``key`` are waited for (once its buffer is empty)."""
        return self._must_wait(key, has_lag, now_ms)

    def wait_ms(self, has_lag: Callable[[K], bool], now_ms: float) -> float | None:
        """How long until an idle input stops holding the others up (``None``: not idling)."""
        if self.max_idle_ms <= 0:
            return None
        waits = [
            self._empty_since[k] + self.max_idle_ms - now_ms
            for k, buffer in self._items()
            if not buffer and not has_lag(k)
        ]
        pending = [w for w in waits if w > 0]
        return min(pending) if pending else None

    def _items(self) -> Iterable[tuple[K, deque[tuple[int, int, T]]]]:
        return self._buffers.items()

    def _must_wait(self, key: K, has_lag: Callable[[K], bool], now_ms: float) -> bool:
        if self.max_idle_ms == NEVER_WAIT:
            return False
        if has_lag(key):
            return True
        return self.max_idle_ms > 0 and now_ms - self._empty_since[key] < self.max_idle_ms

    def _push_head(self, key: K, buffer: deque[tuple[int, int, T]]) -> None:
        timestamp, rank, _ = buffer[0]
        self._sequence += 1
        heapq.heappush(self._heads, (timestamp, rank, _RECORD, self._sequence, key))

    def _push_bound(self, key: K) -> None:
        bound = self._bounds[key][0]
        tail = self._tails.get(key)
        if tail is not None and bound < tail:
            bound = tail  # what comes after its last record goes no earlier
        self._sequence += 1
        self._bound_entries[key] = self._sequence
        heapq.heappush(self._heads, (bound[0], bound[1], _BOUND, self._sequence, key))
