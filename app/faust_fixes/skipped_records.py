"""Fix: Faust's stream can skip records after a rebalance.

What Faust does wrong (faust-streaming 0.15.3): around rebalances it can
hand a stream a partition's records with a hole in their offsets.  It drops
what it fetched before the rebalance, seeks back, and a fetch already in
flight moves its read position past the records it should fetch again.  The
crash test lost payments that way.  Faust's own ``seek`` races with those
fetches too, so seeking back makes it worse.

Replaced: nothing of Faust's; the stream handlers check that each
partition's offsets arrive without a hole, starting from the committed
offset after each rebalance (:class:`OffsetTracker`).  On a hole they read
the missing offsets straight from Kafka (:func:`app.kafka.reader.read_range`)
and process them first, in order (a real gap, such as a transaction marker,
simply yields no record), and count them as acked
(:meth:`MarkProcessedFix.mark_processed`).  What is processed twice is
harmless: the sent table deduplicates notifications and token events apply
idempotently.

Proved by: ``tests/unit/faust_fixes/test_skipped_records.py`` and
``tests/integration/test_crash.py`` (holes are logged and filled in every
run; nothing is missing).

Delete when: the join stops reading its inputs through Faust streams, or
Faust's fetcher discards in-flight fetches on a seek.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class OffsetTracker:
    """Per partition, the next offset the stream should deliver."""

    def __init__(self, committed: Callable[[Any], int | None]) -> None:
        self._committed = committed
        self._next: dict[Any, int] = {}

    def reset(self) -> None:
        """After a rebalance every partition restarts at its committed offset."""
        self._next.clear()

    def hole_before(self, tp: Any, offset: int) -> tuple[int, int] | None:
        """The offsets ``[first, offset)`` that were skipped before ``offset``, if any."""
        expected = self._next.get(tp)
        if expected is None:
            expected = self._committed(tp)
        self._next[tp] = offset + 1
        if expected is not None and offset > expected:
            return expected, offset
        return None


class MarkProcessedFix(faust_aiokafka.Consumer):
    """A consumer that counts records processed outside the stream as acked."""

    def mark_processed(self, tp: TP, offsets: Iterable[int]) -> None:
        """Count ``offsets`` of ``tp`` (read directly, not through the stream) as acked."""
        committed = self._committed_offset[tp]
        acked, index = self._acked[tp], self._acked_index[tp]
        for offset in offsets:
            if (committed is None or offset >= committed) and offset not in index:
                index.add(offset)
                acked.append(offset)
