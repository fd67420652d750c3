"""Small statistics for the report (pure)."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) of sorted values, nearest rank; ``None`` if empty."""
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return float(ordered[min(len(ordered), int(rank)) - 1])


def growth(samples: Sequence[tuple[float, float]], window: float = 0.1) -> float | None:
    """Relative growth of a time series: mean of its last ``window`` share over its first.

    ``(time, value)`` samples; averaging a tenth at each end keeps one
    garbage-collection spike from deciding the result.
    """
    if len(samples) < 2:
        return None
    size = max(1, int(len(samples) * window))
    first = sum(v for _, v in samples[:size]) / size
    last = sum(v for _, v in samples[-size:]) / size
    return (last - first) / first if first else None


def rate(count: int, seconds: float | None) -> float | None:
    """``count / seconds``, ``None`` without a positive duration."""
    return count / seconds if seconds and seconds > 0 else None
