"""Which notification lines a sink got against the ones it should have (pure).

Counting lines (as the join phase does) cannot tell a missing line from an
extra one that makes up for it.  Here every line is reduced to its text (from
``send notification ...`` on, without the log prefix) and hashed; the two
multisets of hashes are compared, so a million lines take a few MiB.  The
hashes come from Python's ``hash`` and are only compared within one process.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.sink import NOTIFICATION


def line_text(line: bytes) -> bytes:
    """The notification of a sink line: from ``send notification`` to the end, stripped."""
    start = line.find(NOTIFICATION)
    return (line[start:] if start >= 0 else line).rstrip()


def fingerprints(texts: Iterable[bytes]) -> Any:
    """The hashes of ``texts`` (stripped line texts), as a numpy ``int64`` array."""
    values = array("q", (hash(text) for text in texts))
    return np.frombuffer(values, dtype=np.int64) if values else np.zeros(0, dtype=np.int64)


def sink_fingerprints(lines: Iterable[bytes]) -> Any:
    """The hashes of a sink's notification lines (see :func:`bench.sink.notification_lines`)."""
    return fingerprints(line_text(line) for line in lines)


def expected_fingerprints(texts: Iterable[str]) -> Any:
    """The hashes of expected line texts (``str``, as rendered)."""
    return fingerprints(text.encode().rstrip() for text in texts)


@dataclass(frozen=True)
class LineCheck:
    """Expected lines against written ones, as multisets: a line written twice is one extra."""

    expected: int
    written: int
    missing: int
    extra: int

    @property
    def exact(self) -> bool:
        """Every expected line, once, and nothing else."""
        return self.missing == 0 and self.extra == 0

    def as_dict(self) -> dict[str, Any]:
        """For the report."""
        return {
            "expected_lines": self.expected,
            "written_lines": self.written,
            "missing_lines": self.missing,
            "extra_lines": self.extra,
            "exact": self.exact,
        }


def compare(expected: Any, written: Any) -> LineCheck:
    """How ``written`` (hashes) differs from ``expected`` (hashes), counting repeats."""
    wanted, wanted_n = np.unique(expected, return_counts=True)
    got, got_n = np.unique(written, return_counts=True)
    at = np.searchsorted(got, wanted)
    inside = at < len(got)
    found = np.zeros(len(wanted), dtype=bool)
    found[inside] = got[at[inside]] == wanted[inside]
    written_of_wanted = np.zeros(len(wanted), dtype=np.int64)
    written_of_wanted[found] = got_n[at[found]]
    matched = int(np.minimum(wanted_n, written_of_wanted).sum())
    return LineCheck(
        expected=len(expected),
        written=len(written),
        missing=len(expected) - matched,
        extra=len(written) - matched,
    )
