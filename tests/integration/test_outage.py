"""A broker outage under a payment stream, on a broker of the test's own.

One worker with users and a steady payment stream; its broker (a second
one, started from scripts/kafka on other ports: the suite's broker is never
touched) is SIGKILLed mid-stream and started again 30 s later.  Then:
nothing lost, nothing doubled; registrations during the outage answered 503
within the bound; ``/readyz`` 503 during the outage, 200 after; the
worker's log readable (under 100 lines per minute of outage).  Slow:
``make test`` runs it.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.kafka.probe import BrokerProbe
from tests.integration.harness import Namespace, Worker, fetch
from tests.integration.outage import SecondBroker, lines_between
from tests.integration.payment_stream import (
    MARKER,
    PaymentStream,
    delivery_counts,
    register_tokens,
    wait_for_all,
)
from tests.metric_names import missing_metrics

pytestmark = pytest.mark.slow

USERS = 100
OUTAGE_S = 30.0
#: PUSHES_PUBLISH_TIMEOUT_SECONDS (the default), and what a 503 may take beyond it.
PUBLISH_TIMEOUT_S = 5.0
ANSWER_SLACK_S = 1.5
UNREACHABLE_S = 10.0


class ReadyzWatch:
    """Polls ``/readyz`` twice a second from a thread; keeps (monotonic time, status, body)."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self.samples: list[tuple[float, int, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ReadyzWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                status, body = self._worker.request("GET", "/readyz")
            except OSError as exc:  # the worker's web server must keep answering
                status, body = 0, repr(exc)
            self.samples.append((time.monotonic(), status, body))

    def between(self, start: float, end: float) -> list[tuple[float, int, Any]]:
        return [s for s in self.samples if start <= s[0] <= end]


def metrics(worker: Worker) -> dict[str, float]:
    """The worker's unlabelled gauges (and the largest value of labelled ones) by name."""
    status, _, body = fetch(worker.url + "/metrics")
    assert status == 200
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[sample.name] = max(values.get(sample.name, float("-inf")), sample.value)
    return values


def post_token(worker: Worker, user: str) -> tuple[int, dict[str, str], Any, float]:
    """One registration: status, headers, JSON body and the seconds it took to answer."""
    body = json.dumps({"user_id": user, "token": f"outage-{uuid.uuid4().hex}"}).encode()
    started = time.monotonic()
    status, headers, raw = fetch(
        worker.url + "/tokens", "POST", body, {"Content-Type": "application/json"}
    )
    return status, headers, json.loads(raw), time.monotonic() - started


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecondBroker]:
    with SecondBroker(tmp_path_factory.mktemp("outage-broker")) as second:
        second.start()
        yield second


@pytest.fixture(scope="module")
def outcome(broker: SecondBroker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the outage once; the tests below each check one promise."""
    namespace = Namespace.fresh()
    workdir: Path = tmp_path_factory.mktemp("outage")
    worker = Worker(namespace, workdir, "w1", KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap)
    worker.start().wait_ready()
    try:
        return _run(broker, worker, namespace)
    finally:
        worker.stop()


def _run(broker: SecondBroker, worker: Worker, namespace: Namespace) -> dict[str, Any]:
    tokens = {f"o{i}-{uuid.uuid4().hex[:6]}": f"tok-{uuid.uuid4().hex}" for i in range(USERS)}
    register_tokens(broker.bootstrap, namespace.tokens_topic, tokens)
    last = sorted(tokens)[-1]
    worker.wait_token(last, "default", tokens[last])
    before = post_token(worker, "before-outage")

    stream = PaymentStream(broker.bootstrap, namespace.payments_topic, tokens).start()
    with ReadyzWatch(worker) as readyz:
        time.sleep(5)  # a few commits
        healthy = fetch(worker.url + "/metrics")[2].decode()
        mark_kill = worker.log_path.stat().st_size
        broker.kill()
        killed = time.monotonic()
        # Registrations at once (the producer may not know yet), then once
        # readiness must have turned, three at a time.
        posts = [post_token(worker, "during-outage-0")]
        time.sleep(max(0.0, killed + UNREACHABLE_S + 2 - time.monotonic()))
        with ThreadPoolExecutor(3) as pool:
            posts += list(pool.map(lambda i: post_token(worker, f"during-outage-{i}"), (1, 2, 3)))
        during = metrics(worker)
        time.sleep(max(0.0, killed + OUTAGE_S - time.monotonic()))
        # The broker answers before start() returns: the outage ends here.
        restarting = time.monotonic()
        broker.start()
        up = time.monotonic()
        mark_up = worker.log_path.stat().st_size
        ready_again = _wait_ready(worker, 120)
        after_posts = [post_token(worker, "after-outage")]
        time.sleep(5)
    stream.stop()
    wait_for_all([worker], stream.expected)
    time.sleep(3)  # anything doubled would show now
    after = metrics(worker)
    outage_lines = lines_between(worker.output(), mark_kill, mark_up)
    noise = [line for line in outage_lines if MARKER not in line]
    counts = delivery_counts([worker], stream.expected)
    summary = {
        "payments": stream.sent,
        **{k: v for k, v in counts.items() if k in ("expected", "logged", "missing_count")},
        "duplicated": len(counts["duplicated"]),
        "post_answer_s": [round(p[3], 2) for p in posts],
        "outage_s": round(up - killed, 1),
        "ready_again_after_restart_s": round(ready_again - up, 1),
        "log_lines_in_outage": len(outage_lines),
        "log_lines_per_outage_minute": round(len(noise) * 60 / (up - killed), 1),
    }
    print("outage test summary:", json.dumps(summary))
    return {
        "counts": counts,
        "before": before,
        "posts": posts,
        "after_posts": after_posts,
        "readyz_outage": readyz.between(killed + UNREACHABLE_S + 3, restarting),
        "readyz_after": readyz.between(ready_again, ready_again + 5),
        "readyz_all": readyz.samples,
        "healthy": healthy,
        "during": during,
        "after": after,
        "log": worker.output(),
        "noise": noise,
        "outage_s": up - killed,
    }


def _wait_ready(worker: Worker, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.request("GET", "/readyz")[0] == 200:
            return time.monotonic()
        time.sleep(0.2)
    raise AssertionError(
        f"not ready {timeout}s after the broker came back:\n{worker.output()[-3000:]}"
    )


def test_no_payment_is_lost_or_notified_twice(outcome):
    counts = outcome["counts"]
    assert counts["missing_count"] == 0, counts["missing"]
    assert not counts["duplicated"], list(counts["duplicated"].items())[:5]
    assert counts["logged"] == counts["expected"] > 0


def test_registrations_during_the_outage_are_503_within_the_bound(outcome):
    status, _, _, _ = outcome["before"]
    assert status == 202
    for status, headers, body, seconds in outcome["posts"]:
        assert status == 503, (status, body)
        assert headers.get("Retry-After") == "5"
        assert body["code"] == "kafka_unavailable"
        assert "Kafka is unavailable" in body["error"] and "not stored" in body["error"]
        assert seconds <= PUBLISH_TIMEOUT_S + ANSWER_SLACK_S, seconds
    (status, _, body, _) = outcome["after_posts"][0]
    assert status == 202, body


def test_readyz_is_503_during_the_outage_and_200_after(outcome):
    during = outcome["readyz_outage"]
    assert during, "no /readyz sample during the outage"
    assert {status for _, status, _ in during} == {503}, during
    assert all("Kafka broker" in body["reason"] for _, _, body in during), during[:2]
    after = outcome["readyz_after"]
    assert after and {status for _, status, _ in after} == {200}, after
    # The web server answered throughout: /healthz-style liveness never failed.
    assert all(status in (200, 503) for _, status, _ in outcome["readyz_all"])


def test_gauges_follow_the_broker(outcome):
    during, after = outcome["during"], outcome["after"]
    assert during["pushes_broker_reachable"] == 0 and during["pushes_ready"] == 0
    assert during["pushes_seconds_since_last_fetch"] >= UNREACHABLE_S
    assert after["pushes_broker_reachable"] == 1 and after["pushes_ready"] == 1
    assert after["pushes_seconds_since_last_fetch"] < 5


def test_the_log_stays_readable(outcome):
    per_minute = len(outcome["noise"]) * 60 / outcome["outage_s"]
    assert per_minute < 100, "\n".join(outcome["noise"][:40])


def test_the_outage_and_its_end_are_each_logged_once_by_the_worker(outcome):
    log = outcome["log"]
    assert log.count("the Kafka broker has not answered for") == 1
    assert log.count("the Kafka broker answers again, after") == 1


def test_every_metric_the_alerts_and_the_dashboard_use_is_served_live(outcome):
    assert missing_metrics(outcome["healthy"]) == set()


def test_a_healthy_worker_serves_its_health_gauges(outcome):
    families = {f.name: f for f in text_string_to_metric_families(outcome["healthy"])}
    assert families["pushes_ready"].samples[0].value == 1
    assert families["pushes_broker_reachable"].samples[0].value == 1
    assert families["pushes_seconds_since_last_fetch"].samples[0].value < 5
    commits = families["pushes_seconds_since_last_commit"].samples
    # Every input partition the worker owns: 4 topics of 8 partitions.
    assert len({(s.labels["topic"], s.labels["partition"]) for s in commits}) == 32
    assert min(s.value for s in commits) < 5  # the payments partitions commit


async def test_the_probe_gets_an_answer_from_a_live_broker(broker, outcome):
    probe = BrokerProbe(Settings(bootstrap_servers=broker.bootstrap), timeout=5.0)
    try:
        assert await probe.probe() is True
        assert probe.contact.silence() == pytest.approx(0.0, abs=1.0)
    finally:
        probe.close()
