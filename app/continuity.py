"""Reading again what Faust skipped in a rebalance, so that none is lost.

Around a rebalance, Faust 0.15.3's stream skips the records it fetched under
the previous consumer generation (and any that arrive while flow control is
paused).  It means to fetch them again from the committed offset, but its
read position can already be past them, and then they never come back: the
crash test lost payments that way.  :class:`app.application.PushesEvent`
does not ack such a record (so no commit passes it) and notes it here; once
the stream flows again, the worker seeks each partition it still owns back
to the first record it skipped.  What is read twice is harmless: the sent
table deduplicates notifications and token events apply idempotently.
"""

from __future__ import annotations

from typing import Any


class SkippedRecords:
    """The first skipped offset of each partition, until it is read again."""

    def __init__(self) -> None:
        self._first: dict[Any, int] = {}

    def note(self, tp: Any, offset: int) -> None:
        """Remember that the record at ``offset`` of ``tp`` was skipped."""
        first = self._first.get(tp)
        if first is None or offset < first:
            self._first[tp] = offset

    def take(self, owned: set[Any]) -> dict[Any, int]:
        """Where to seek the partitions in ``owned``; forgets every partition."""
        due = {tp: offset for tp, offset in self._first.items() if tp in owned}
        self._first.clear()
        return due


skipped_records = SkippedRecords()
