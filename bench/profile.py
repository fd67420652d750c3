"""Sampling the worker with py-spy, and the top functions of a profile.

``py-spy record`` attaches to the running worker (no restart, no code
change) and writes a speedscope file (open it at speedscope.app, or
``py-spy``'s own viewer).  :func:`top_functions` turns that file into the
text summary: per function, samples where it was running (self) and where it
was on the stack (cumulative).  Idle threads are sampled too (``--idle``): a
worker that mostly *waits* (for Kafka acknowledgements, say) shows it as the
event loop's share in ``select``, which a CPU-only profile would hide.  The
top lists count busy samples only; the idle share is reported per thread.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLES_PER_SECOND = 100
#: Leaf frames of a thread that waits, as ``(function name suffix, file)``:
#: the event loop's selector and threading's locks.
IDLE_LEAVES = (
    ("select", "selectors.py"),
    ("wait", "threading.py"),
    ("_wait_for_tstate_lock", "threading.py"),
)


#: A function on at least this share of the busy stacks is scaffolding (event loop, CLI).
EVERYWHERE = 0.98
PROJECT_DIRS = ("app/", "tables/")


def py_spy() -> str:
    """The py-spy executable installed next to this Python (the ``bench`` extra)."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if not found:
        raise RuntimeError("py-spy is not installed: pip install -e '.[bench]'")
    return found


class Profiler:
    """``py-spy record`` attached to ``pid`` until :meth:`stop`."""

    def __init__(self, pid: int, output: Path, log: Path) -> None:
        self.output = output
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                [
                    py_spy(),
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "speedscope",
                    "--rate",
                    str(SAMPLES_PER_SECOND),
                    "--output",
                    str(output),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self, timeout: float = 60.0) -> Path:
        """Stop sampling (SIGINT makes py-spy write its file); return the file."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self.output


@dataclass(frozen=True)
class FunctionTime:
    """One function's share of the samples."""

    function: str
    samples: int
    share: float


@dataclass(frozen=True)
class ProfileSummary:
    """The busiest functions of a profile, by self and by cumulative samples."""

    samples: int
    #: Per thread: ``{"samples": n, "idle_share": share of them waiting}``.
    threads: dict[str, dict[str, float]]
    by_self: list[FunctionTime]
    #: Leaves out the frames on (nearly) every stack: the event loop, the CLI.
    by_cumulative: list[FunctionTime]
    #: The project's own functions (app/, tables/) by cumulative time.
    ours: list[FunctionTime]

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "busy_samples": self.samples,
            "threads": self.threads,
            "top_self": [vars(f) for f in self.by_self],
            "top_cumulative": [vars(f) for f in self.by_cumulative],
            "top_project_cumulative": [vars(f) for f in self.ours],
        }


def short_path(path: str, root: str) -> str:
    """A frame's file relative to the project, site-packages or the standard library."""
    for marker in ("site-packages/", root.rstrip("/") + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if "/lib/python3" in path:  # .../lib/python3.11/asyncio/events.py -> asyncio/events.py
        return path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return path


def frame_label(frame: dict[str, Any], root: str) -> str:
    """``name (file)``: one function, whatever line of it was running."""
    return f"{frame.get('name', '?')} ({short_path(str(frame.get('file', '?')), root)})"


def is_project(label: str) -> bool:
    """Whether a frame label is one of the project's own functions."""
    return label.partition(" (")[2].startswith(PROJECT_DIRS)


def is_idle(leaf: str) -> bool:
    """Whether a stack ending in ``leaf`` is a thread waiting, not working."""
    name, _, path = leaf.partition(" (")
    return any(name.endswith(n) and path == f"{f})" for n, f in IDLE_LEAVES)


def top_functions(speedscope: dict[str, Any], root: str, limit: int = 15) -> ProfileSummary:
    """Summarise a py-spy speedscope document; functions are ``name (file)``."""
    labels = [frame_label(f, root) for f in speedscope["shared"]["frames"]]
    self_counts: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    threads: dict[str, dict[str, float]] = {}
    busy = 0
    for profile in speedscope["profiles"]:
        # py-spy weighs every sample with its interval in seconds: count samples.
        seen = idle = 0
        for stack in profile["samples"]:
            if not stack:
                continue
            seen += 1
            names = [labels[i] for i in stack]
            if is_idle(names[-1]):
                idle += 1
                continue
            self_counts[names[-1]] += 1
            for name in set(names):  # a recursive function counts once per sample
                cumulative[name] += 1
        threads[profile.get("name", "?")] = {
            "samples": seen,
            "idle_share": idle / seen if seen else 0.0,
        }
        busy += seen - idle

    def ranked(counts: Counter[str]) -> list[FunctionTime]:
        return [
            FunctionTime(name, int(n), n / busy if busy else 0.0)
            for name, n in counts.most_common(limit)
        ]

    below_all = Counter({k: n for k, n in cumulative.items() if n < EVERYWHERE * busy})
    ours = Counter({k: n for k, n in cumulative.items() if is_project(k)})
    return ProfileSummary(int(busy), threads, ranked(self_counts), ranked(below_all), ranked(ours))


def summarize_file(path: Path, root: str, limit: int = 15) -> ProfileSummary:
    """:func:`top_functions` of a speedscope file."""
    return top_functions(json.loads(path.read_text()), root, limit)


def summary_text(summary: ProfileSummary) -> str:
    """The summary as the text file saved next to the profile."""
    lines = [
        f"{summary.samples} busy samples ({summary.samples / SAMPLES_PER_SECOND:.1f} s of "
        f"work at {SAMPLES_PER_SECOND} samples/s); per thread, samples and share idle:",
        *(
            f"  {name}: {t['samples']:.0f} samples, {t['idle_share']:.0%} idle"
            for name, t in sorted(summary.threads.items())
        ),
    ]
    for title, rows in (
        ("by self time", summary.by_self),
        (
            f"by cumulative time (without those on >= {EVERYWHERE:.0%} of stacks)",
            summary.by_cumulative,
        ),
        ("of the project (app/, tables/) by cumulative time", summary.ours),
    ):
        lines += ["", f"top {len(rows)} functions {title} (share of busy samples):"]
        lines += [f"  {row.share:6.1%}  {row.samples:7d}  {row.function}" for row in rows]
    return "\n".join(lines) + "\n"
