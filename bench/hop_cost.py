"""What the repartition hop costs, and what skipping it saves.

``python -m bench.hop_cost [N]`` registers tokens for 1,000 users, then times
N payments keyed by user id (already on their canonical partition: no hop)
and N keyed by payment id (off their user's partition).  One worker owns
every partition, so it processes those at once; the same payments are then
timed on a worker started with ``PUSHES_SKIP_LOCAL_HOPS=false``, which
forwards each through ``*-payments-canonical`` first.  Each time runs from
the first record to the last notification line.  It reuses the integration
tests' worker harness (a real ``faust -A app worker``).
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
    users = [f"hop-{i}" for i in range(1000)]
    in_place = [(users[i % 1000].encode(), payment(f"a{i}", users[i % 1000])) for i in range(n)]
    off_partition = [(f"b{i}".encode(), payment(f"b{i}", users[i % 1000])) for i in range(n)]
    hopping = [(f"c{i}".encode(), payment(f"c{i}", users[i % 1000])) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        worker = Worker(namespace, Path(tmp), PUSHES_LATE_TOKEN_GRACE_SECONDS="0")
        worker.start().wait_ready()
        try:
            produce_librdkafka(
                namespace.tokens_topic,
                [
                    (u.encode(), json.dumps({"user_id": u, "token": f"token-for-{u}"}).encode())
                    for u in users
                ],
            )
            worker.wait_token(users[-1], "default", f"token-for-{users[-1]}")
            time.sleep(2)
            t_in_place = _timed(worker, namespace.payments_topic, in_place, n)
            t_skipped = _timed(worker, namespace.payments_topic, off_partition, n)
        finally:
            worker.stop()
        # The same group and state, now forwarding every off-partition record.
        worker = Worker(
            namespace,
            Path(tmp),
            PUSHES_LATE_TOKEN_GRACE_SECONDS="0",
            PUSHES_SKIP_LOCAL_HOPS="false",
        )
        worker.start().wait_ready()
        try:
            time.sleep(2)
            t_hopping = _timed(worker, namespace.payments_topic, hopping, n)
        finally:
            worker.stop()
    print(
        json.dumps(
            {
                "payments": n,
                "in_place_per_s": round(n / t_in_place),
                "off_partition_skipping_the_hop_per_s": round(n / t_skipped),
                "off_partition_hopping_per_s": round(n / t_hopping),
                "hop_cost_ms_per_payment": round((t_hopping - t_in_place) / n * 1000, 3),
            }
        )
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
