"""Fix: Faust does not tell when an offset was really committed.

What Faust does wrong (faust-streaming 0.15.3): its aiokafka consumer thread
stamps ``tp_last_committed_at`` *before* it sends the commit, so a commit
that hangs on a lost broker, or fails, looks done; and
``Consumer._commit_offsets`` calls ``monitor.on_tp_commit`` whether or not
the commit succeeded.  Neither can say "this partition's offset has not
moved for five minutes" (the ``PushesCommitStalled`` alert).

Replaced: nothing; :class:`CommitClockFix` wraps ``_commit`` (the call that
returns once Kafka accepted the offsets, ``True``) and stamps each committed
partition then, and stamps each partition when it is assigned, so a
partition that has never been committed here counts from its assignment.

Proved by: ``tests/unit/faust_fixes/test_commit_clock.py`` and the live
``/metrics`` test of ``tests/integration/test_outage.py``.

Delete when: Faust records commit times after the commit succeeded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class CommitTimes:
    """Per partition, monotonic time of its last commit (or of its assignment)."""

    def __init__(self) -> None:
        self._committed: dict[TP, float] = {}
        self._assigned: dict[TP, float] = {}

    def on_assigned(self, tps: Iterable[TP], now: float) -> None:
        """``tps`` are this worker's now; those it did not have start counting at ``now``."""
        current = set(tps)
        for tp in list(self._assigned):
            if tp not in current:
                del self._assigned[tp]
                self._committed.pop(tp, None)
        for tp in current:
            self._assigned.setdefault(tp, now)

    def on_committed(self, tps: Iterable[TP], now: float) -> None:
        """Kafka accepted offsets of ``tps`` at ``now``."""
        for tp in tps:
            self._committed[tp] = now

    def seconds_since(self, tp: TP, now: float) -> float | None:
        """Seconds since ``tp`` was last committed, or assigned if it was not since."""
        times = [t for t in (self._committed.get(tp), self._assigned.get(tp)) if t is not None]
        return None if not times else max(0.0, now - max(times))


class CommitClockFix(faust_aiokafka.Consumer):
    """Faust's consumer, stamping a partition when Kafka accepted its offset."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Read by the ``pushes_seconds_since_last_commit`` gauge.
        self.commit_times = CommitTimes()

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        """Start the clock of newly assigned partitions, then assign as before."""
        self.commit_times.on_assigned(assigned, time.monotonic())
        await super().on_partitions_assigned(assigned, generation_id)

    async def _commit(self, offsets: Mapping[TP, int]) -> bool:
        committed = await super()._commit(offsets)
        if committed:
            self.commit_times.on_committed(offsets, time.monotonic())
        return committed
