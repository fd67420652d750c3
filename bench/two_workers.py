"""Two workers on one backlog: what waiting for the hop's bounds costs, and that it is exact.

``python -m bench.two_workers [USERS]`` produces the order tests' backlog
(:func:`tests.integration.test_order.backlog`: users registering, replacing
and removing devices, their payments in between, 30% of the payments keyed by
payment id) for ``USERS`` users, payments first, then starts two workers at
once, and again with ``PUSHES_HOP_WAIT_MS=0`` (forwarded records in their
order of arrival, as before the bounds).  The first worker to join reads
everything until the second joins; the rate is taken over the time both
read: from the later of their last assignments to the last line, over the
lines written in it.  Each run says whether its lines were exact.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from tests.integration.harness import Namespace, Worker
from tests.integration.kafka_tools import create_topics, produce_at
from tests.integration.test_order import GRACE_S, HOUR_MS, MARKER, Scenario, backlog, now_ms

_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
ASSIGNED = "join: reading"


def _at(line: str) -> float:
    match = _STAMP.match(line)
    if match is None:
        raise ValueError(f"no time stamp: {line[:60]}")
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def measure(s: Scenario, workdir: Path, env: dict[str, str]) -> dict[str, object]:
    """Run the backlog on two workers; the lines' exactness and the two-worker rate."""
    workdir.mkdir(parents=True, exist_ok=True)
    namespace = Namespace.fresh()
    create_topics({namespace.tokens_topic: 8, namespace.payments_topic: 8})
    produce_at(namespace.payments_topic, sorted(s.payments, key=lambda r: r[2]))
    produce_at(namespace.tokens_topic, sorted(s.tokens, key=lambda r: r[2]))
    workers = [
        Worker(namespace, workdir, f"w{i}", PUSHES_LATE_TOKEN_GRACE_SECONDS=str(GRACE_S), **env)
        for i in range(2)
    ]
    total = sum(s.expected.values())
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if sum(len(w.lines(MARKER)) for w in workers) >= total:
                break
            time.sleep(0.5)
        time.sleep(2)
        logs = [w.output().splitlines() for w in workers]
    finally:
        for w in workers:
            w.stop()
    lines = [line for log in logs for line in log if MARKER in line]
    got = Counter(MARKER + line.split(MARKER, 1)[1].strip() for line in lines)
    both_from = max(_at([line for line in log if ASSIGNED in line][-1]) for log in logs)
    late = [_at(line) for line in lines if _at(line) >= both_from]
    span = (max(late) - both_from) if late else 0.0
    return {
        "env": env,
        "lines": sum(got.values()),
        "expected": total,
        "missing": sum((s.expected - got).values()),
        "extra": sum((got - s.expected).values()),
        "lines_with_both": len(late),
        "seconds_with_both": round(span, 2),
        "lines_per_s_with_both": round(len(late) / span) if span else None,
    }


def main(users: int = 6000) -> None:
    s = backlog(7, users=users, base_ms=now_ms() - HOUR_MS, grace=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, env in enumerate(({}, {"PUSHES_HOP_WAIT_MS": "0"})):
            results.append(measure(s, Path(tmp) / str(i), env))
            print(json.dumps(results[-1]), flush=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
