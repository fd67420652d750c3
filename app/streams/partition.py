"""What the join keeps per canonical partition besides its tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class PartitionState:
    """One partition's event-time clock and retention-sweep progress."""

    #: The newest event time seen on the partition (epoch ms): its "now".
    stream_time: int = 0
    #: Monotonic time of the last retention sweep.
    last_sweep: float = 0.0
    #: Where the next sweep of the sent table continues (``None``: from the start).
    sent_cursor: bytes | None = None

    def advance(self, event_ms: int) -> int:
        """Move the clock to ``event_ms`` if that is later; return the clock."""
        if event_ms > self.stream_time:
            self.stream_time = event_ms
        return self.stream_time


class Partitions:
    """The state of every partition this worker processes, rebuilt on each assignment."""

    def __init__(self) -> None:
        self._states: dict[int, PartitionState] = {}

    def assign(self, partitions: Iterable[int]) -> None:
        """Keep the state of partitions still assigned; forget the others."""
        self._states = {p: self._states.get(p) or PartitionState() for p in partitions}

    def __getitem__(self, partition: int) -> PartitionState:
        state = self._states.get(partition)
        if state is None:
            state = self._states[partition] = PartitionState()
        return state
