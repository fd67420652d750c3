"""What the join keeps per canonical partition besides its tables."""

from __future__ import annotations

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
    #: The same for the pending table.
    pending_cursor: bytes | None = None

    def advance(self, event_ms: int) -> int:
        """Move the clock to ``event_ms`` if that is later; return the clock."""
        if event_ms > self.stream_time:
            self.stream_time = event_ms
        return self.stream_time
