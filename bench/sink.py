"""Reading the worker's log sink: counting notification lines and timing them.

The worker (and the baseline) write Faust's default log format to a file::

    [2026-11-27 17:46:42,347] [20831] [INFO]: send notification to mobile app with token: ...

run with ``TZ=UTC``, so the timestamp is UTC with millisecond resolution.
Counting works on raw bytes (``bytes.count`` runs at memory speed), so the
bench can follow a sink growing by a million lines without slowing the
worker it measures.
"""

from __future__ import annotations

import calendar
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

NOTIFICATION = b"send notification to mobile app with token: "
WITHOUT_TOKEN = b") not notified"
MESSAGE = b" and message: Payment "
READ_CHUNK = 8 << 20
#: Faust's (mode's) default log format, so every sink gets the same bytes per line.
LOG_FORMAT = "[%(asctime)s] [%(process)s] [%(levelname)s]: %(message)s "


def sink_logger(path: str, name: str) -> logging.Logger:
    """A logger ``name`` writing Faust's line format to ``path``, like ``faust worker -f``.

    For the bench's contestants (baseline, Quix), so the same parsing reads
    their sinks and the worker's.
    """
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


@dataclass(frozen=True)
class LineCounts:
    """Lines seen in a sink so far."""

    notifications: int = 0
    without_token: int = 0

    def __add__(self, other: LineCounts) -> LineCounts:
        return LineCounts(
            self.notifications + other.notifications, self.without_token + other.without_token
        )


def count_lines(complete: bytes) -> LineCounts:
    """Notification and "not notified" lines in ``complete`` (whole lines only)."""
    return LineCounts(complete.count(NOTIFICATION), complete.count(WITHOUT_TOKEN))


def split_complete(chunk: bytes) -> tuple[bytes, bytes]:
    """``(whole lines, unfinished rest)`` of ``chunk``."""
    end = chunk.rfind(b"\n") + 1
    return chunk[:end], chunk[end:]


class SinkFollower:
    """Follows a growing log file from an offset and keeps the line counts."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.counts = LineCounts()
        self._rest = b""

    def poll(self) -> LineCounts:
        """Read what was appended since the last call; return the totals."""
        if not self.path.exists():
            return self.counts
        with self.path.open("rb") as sink:
            sink.seek(self.offset)
            while chunk := sink.read(READ_CHUNK):
                self.offset += len(chunk)
                complete, self._rest = split_complete(self._rest + chunk)
                self.counts = self.counts + count_lines(complete)
        return self.counts


def file_size(path: Path) -> int:
    """Size of ``path`` in bytes, 0 if it does not exist yet."""
    return path.stat().st_size if path.exists() else 0


class _SecondCache:
    """Epoch seconds of ``YYYY-mm-dd HH:MM:SS`` (UTC), parsed once per distinct second."""

    def __init__(self) -> None:
        self._seen: dict[bytes, int] = {}

    def __call__(self, text: bytes) -> int:
        value = self._seen.get(text)
        if value is None:
            value = calendar.timegm(time.strptime(text.decode(), "%Y-%m-%d %H:%M:%S"))
            self._seen[text] = value
        return value


def line_time_ms(line: bytes, seconds: _SecondCache | None = None) -> int:
    """Epoch milliseconds of a line starting ``[2026-11-27 17:46:42,347]``."""
    parse = seconds or _SecondCache()
    return parse(line[1:20]) * 1000 + int(line[21:24])


def payment_id_of(line: bytes) -> str:
    """The payment id in a notification line (``... message: Payment <id> of ...``)."""
    start = line.index(MESSAGE) + len(MESSAGE)
    return line[start : line.index(b" ", start)].decode()


def notification_lines(path: Path, offset: int = 0) -> Iterator[bytes]:
    """Every notification line of the sink from ``offset`` on."""
    with path.open("rb") as sink:
        sink.seek(offset)
        for line in sink:
            if NOTIFICATION in line:
                yield line


def first_line_ms(path: Path, offset: int, *needles: bytes) -> int | None:
    """Epoch ms of the first line from ``offset`` on that contains any of ``needles``."""
    with path.open("rb") as sink:
        sink.seek(offset)
        for line in sink:
            if line.startswith(b"[") and any(needle in line for needle in needles):
                return line_time_ms(line)
    return None


def timed_notifications(lines: Iterable[bytes]) -> Iterator[tuple[int, str]]:
    """``(epoch ms, payment id)`` of each notification line."""
    seconds = _SecondCache()
    for line in lines:
        yield line_time_ms(line, seconds), payment_id_of(line)


@dataclass(frozen=True)
class SinkSummary:
    """When a run's notification lines were written."""

    lines: int
    first_ms: int | None
    last_ms: int | None
    #: ``(epoch second, lines written in it)`` for every second with a line, in order.
    per_second: list[tuple[int, int]]


def summarize(lines: Iterable[bytes]) -> SinkSummary:
    """Count, first and last time, and lines per second of ``lines``."""
    seconds = _SecondCache()
    buckets: Counter[int] = Counter()
    first = last = None
    count = 0
    for line in lines:
        stamp = line_time_ms(line, seconds)
        buckets[stamp // 1000] += 1
        first = stamp if first is None else min(first, stamp)
        last = stamp if last is None else max(last, stamp)
        count += 1
    return SinkSummary(count, first, last, sorted(buckets.items()))
