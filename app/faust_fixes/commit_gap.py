"""Fix: Faust's offset commit can pass a record that was never processed.

What Faust does wrong (faust-streaming 0.15.3, ``Consumer._new_offset``):
it decides how far to commit from the offsets acked so far and refuses only
when the lowest acked offset is more than one past the committed one.  But
the committed offset already *is* the next record to process, so a single
unprocessed record at the head (one a rebalance made the stream skip) is
committed over and lost.  It also skips the check when the partition has no
commit yet, and it leaves the committed offset of such a partition unknown.
The crash test lost payments both ways.

Replaced: ``Consumer._new_offset`` and ``Consumer.perform_seek``.  A run of
acked offsets is committed only when it starts exactly at the committed
offset; a partition without a commit starts at its earliest offset
(``auto_offset_reset=earliest``).

Proved by: ``tests/unit/faust_fixes/test_commit_gap.py`` (the committable
run) and ``tests/integration/test_crash.py`` (nothing missing after kills
and rebalances).

Delete when: Faust compares the lowest acked offset with the committed
offset itself (no upstream fix as of 0.15.3).
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.utils.functional import consecutive_numbers


def committable_run(acked: list[int], committed: int | None) -> list[int] | None:
    """The acked offsets that may be committed now, from sorted ``acked``.

    ``committed`` is the next offset to process (Kafka's committed offset), or
    ``None`` when the partition has no commit yet.
    """
    if not acked:
        return None
    if committed is not None and acked[0] != committed:
        return None  # the record at `committed` (and maybe more) is not done
    return list(next(consecutive_numbers(acked)))


class CommitGapFix(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose commits never pass an unprocessed record."""

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and know where uncommitted partitions start."""
        await super().perform_seek()
        unknown = [tp for tp in self.assignment() if self._committed_offset[tp] is None]
        if unknown:
            earliest = await self.earliest_offsets(*unknown)
            for tp, offset in earliest.items():
                if self._committed_offset[tp] is None:
                    self._committed_offset[tp] = offset

    def committed_offset(self, tp: TP) -> int | None:
        """The next offset to process of ``tp``, as far as this consumer knows."""
        return self._committed_offset[tp]

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        if gaps:
            # Offsets Faust knows hold no record (transaction markers,
            # compaction) count as acked, as in Faust.
            max_offset = max(acked)
            filled = [
                offset
                for interval in sorted(gaps.overlap(0, max_offset), key=lambda i: i.begin)
                for offset in range(interval.begin, interval.end)
            ]
            if filled:
                acked.extend(filled)
                gaps.chop(0, max(filled[-1], max_offset + 1))
        acked.sort()
        # Drop duplicates of already committed offsets (a record processed
        # again after a seek); they must not hide the head of the run.
        committed = self._committed_offset[tp]
        if committed is not None:
            while acked and acked[0] < committed:
                self._acked_index[tp].discard(acked.pop(0))
        run = committable_run(acked, committed)
        if run is None:
            return None
        del acked[: len(run)]
        self._acked_index[tp].difference_update(run)
        return run[-1] + 1
