"""Latencies of a paced stream, from produce time to notification line (pure).

A line that never arrived is not dropped from the distribution: it counts
with the lower bound of its latency (the end of the wait minus its produce
time), and the result says the percentiles are then lower bounds.  A worker
that falls behind the rate cannot look fast by losing its slowest lines.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Latencies:
    """Sorted latencies (ms) of the notification lines of one window."""

    values: list[int]
    missing: int

    @property
    def lower_bound(self) -> bool:
        """Whether missing lines make every percentile a lower bound."""
        return self.missing > 0


def measure(
    arrivals: Iterable[tuple[int, int]],
    produced_ms: Sequence[int],
    expected_lines: Sequence[int],
    *,
    window_end_ms: float,
    gave_up_ms: int,
) -> tuple[Latencies, Latencies]:
    """``(latency window, whole stream)`` from ``(line ms, payment index)`` arrivals.

    ``produced_ms[i]`` is when payment ``i`` was produced, ``expected_lines[i]``
    how many lines it must give; the window holds payments produced before
    ``window_end_ms``; ``gave_up_ms`` is when the wait for lines ended.
    """
    window: list[int] = []
    stream: list[int] = []
    arrived: Counter[int] = Counter()
    for at, index in arrivals:
        latency = at - produced_ms[index]
        stream.append(latency)
        if produced_ms[index] < window_end_ms:
            window.append(latency)
        arrived[index] += 1
    window_missing = stream_missing = 0
    for index, lines in enumerate(expected_lines):
        short = lines - arrived[index]
        if short <= 0:
            continue
        bound = gave_up_ms - produced_ms[index]
        stream += [bound] * short
        stream_missing += short
        if produced_ms[index] < window_end_ms:
            window += [bound] * short
            window_missing += short
    return Latencies(sorted(window), window_missing), Latencies(sorted(stream), stream_missing)
