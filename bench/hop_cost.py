"""What the repartition hop costs: one worker, the same payments twice.

``python -m bench.hop_cost [N]`` registers tokens for 1,000 users, then times
N payments keyed by user id (already on their canonical partition: no hop)
and N keyed by payment id (each forwarded to ``*-payments-canonical`` first),
from the first record to the last notification line.  It reuses the
integration tests' worker harness (a real ``faust -A app worker``).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from tests.integration.harness import Namespace, Worker, payment, produce
from tests.integration.kafka_tools import produce_librdkafka

MARKER = "send notification to mobile app with token: "


def _timed(worker: Worker, topic: str, records: list[tuple[bytes, bytes]], n: int) -> float:
    before = len(worker.lines(MARKER))
    start = time.monotonic()
    produce(topic, records)
    worker.wait_for(MARKER, timeout=600, count=before + n)
    return time.monotonic() - start


def main(n: int = 5000) -> None:
    namespace = Namespace.fresh()
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(namespace, Path(tmp), PUSHES_LATE_TOKEN_GRACE_SECONDS="0")
        worker.start().wait_ready()
        try:
            users = [f"hop-{i}" for i in range(1000)]
            produce_librdkafka(
                namespace.tokens_topic,
                [
                    (u.encode(), json.dumps({"user_id": u, "token": f"token-for-{u}"}).encode())
                    for u in users
                ],
            )
            worker.wait_token(users[-1], "default", f"token-for-{users[-1]}")
            time.sleep(2)
            in_place = [
                (users[i % 1000].encode(), payment(f"a{i}", users[i % 1000])) for i in range(n)
            ]
            hopping = [(f"b{i}".encode(), payment(f"b{i}", users[i % 1000])) for i in range(n)]
            t_in_place = _timed(worker, namespace.payments_topic, in_place, n)
            t_hopping = _timed(worker, namespace.payments_topic, hopping, n)
        finally:
            worker.stop()
    print(
        json.dumps(
            {
                "payments": n,
                "in_place_per_s": round(n / t_in_place),
                "hopping_per_s": round(n / t_hopping),
                "hop_cost_ms_per_payment": round((t_hopping - t_in_place) / n * 1000, 3),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
