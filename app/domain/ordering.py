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
offset order whatever their timestamps, as in Kafka Streams.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

#: Tie-break ranks: at equal timestamps a token event goes before a payment.
TOKEN_RANK = 0
PAYMENT_RANK = 1

#: ``max_idle_ms`` that never waits, not even for an input with known lag.
NEVER_WAIT = -1


class Merge(Generic[K, T]):
    """Per-input buffers, taken in timestamp order across inputs."""

    def __init__(self, max_idle_ms: int = 0) -> None:
        if max_idle_ms < NEVER_WAIT:
            raise ValueError("max_idle_ms must be -1, 0 or more")
        self.max_idle_ms = max_idle_ms
        self._buffers: dict[K, deque[tuple[int, int, T]]] = {}
        self._empty_since: dict[K, float] = {}
        # Heads of the non-empty buffers: (timestamp, rank, sequence, input).
        self._heads: list[tuple[int, int, int, K]] = []
        self._sequence = 0

    def assign(self, inputs: Iterable[K], now_ms: float) -> None:
        """Start over with ``inputs``, all empty (a new assignment)."""
        self._buffers = {key: deque() for key in inputs}
        self._empty_since = dict.fromkeys(self._buffers, now_ms)
        self._heads = []

    @property
    def inputs(self) -> list[K]:
        """The inputs, in the order they were assigned."""
        return list(self._buffers)

    def buffered(self, key: K) -> int:
        """How many records of ``key`` wait in its buffer."""
        return len(self._buffers[key])

    def __len__(self) -> int:
        return sum(len(buffer) for buffer in self._buffers.values())

    def add(self, key: K, records: Iterable[tuple[int, int, T]]) -> None:
        """Append ``(timestamp_ms, rank, record)`` of ``key``, in offset order."""
        buffer = self._buffers[key]
        was_empty = not buffer
        buffer.extend(records)
        if was_empty and buffer:
            self._push_head(key, buffer)

    def take(self, limit: int, has_lag: Callable[[K], bool], now_ms: float) -> list[tuple[K, T]]:
        """Up to ``limit`` records in timestamp order, stopping where the order is unknown.

        ``has_lag(key)`` says whether an input has records on the broker
        that are not buffered yet (its position is below its high watermark,
        or is not known yet).  Nothing is taken while an empty input must be
        waited for; taking stops as soon as one becomes empty that must be.
        """
        if any(not buffer and self._must_wait(k, has_lag, now_ms) for k, buffer in self._items()):
            return []
        taken: list[tuple[K, T]] = []
        heads = self._heads
        while heads and len(taken) < limit:
            _, _, _, key = heapq.heappop(heads)
            buffer = self._buffers[key]
            taken.append((key, buffer.popleft()[2]))
            if buffer:
                self._push_head(key, buffer)
            else:
                self._empty_since[key] = now_ms
                if self._must_wait(key, has_lag, now_ms):
                    break
        return taken

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
        heapq.heappush(self._heads, (timestamp, rank, self._sequence, key))
