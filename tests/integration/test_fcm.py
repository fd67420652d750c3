"""Real pushes from a real worker: FCM HTTP v1 answered by the local fake, on the real broker.

The fake speaks FCM's protocol and Google's token endpoint; what it accepted
is what a phone would get.  Slow: retries wait at least the 10 s FCM asks for.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest

from app.notify.fake_fcm import make_service_account
from tests.integration.fcm_tools import FakeFcmProcess, sent_pairs
from tests.integration.harness import Namespace, Worker, fetch, payment, produce
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.slow

Pairs = Counter[tuple[str, str]]


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeFcmProcess]:
    process = FakeFcmProcess(tmp_path)
    yield process
    process.stop()


def start_worker(namespace: Namespace, workdir: Path, fake: FakeFcmProcess, **env: str) -> Worker:
    return Worker(namespace, workdir, **{**fake.env(), **env}).start().wait_ready()


def users_with_devices(worker: Worker, count: int, devices: int = 2) -> dict[str, list[str]]:
    tokens: dict[str, list[str]] = {}
    for i in range(count):
        user = f"f{i}-{uuid.uuid4().hex[:6]}"
        tokens[user] = [f"fcm-{user}-d{d}-{uuid.uuid4().hex}" for d in range(devices)]
        for d, token in enumerate(tokens[user]):
            worker.register(user, token, device_id=f"d{d}")
    for user, toks in tokens.items():
        worker.wait_token(user, f"d{len(toks) - 1}", toks[-1])
    return tokens


def pay(namespace: Namespace, users: dict[str, list[str]], tag: str) -> Pairs:
    """One payment per user; the (token, payment) pairs the fake must accept once each."""
    produce(
        namespace.payments_topic,
        [(user.encode(), payment(f"{tag}-{user}", user)) for user in users],
    )
    return Counter((token, f"{tag}-{user}") for user, toks in users.items() for token in toks)


def wait_accepted(fake: FakeFcmProcess, expected: Pairs, timeout: float) -> Pairs:
    """Wait until the fake accepted every pair of ``expected``; what it accepted then."""
    deadline = time.monotonic() + timeout
    while True:
        got = Counter(sent_pairs(fake.accepted()))
        missing = [pair for pair in expected if not got[pair]]
        if not missing:
            time.sleep(1)  # anything sent twice would show up now
            return Counter(sent_pairs(fake.accepted()))
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} of {len(expected)} not accepted: {missing[:3]}")
        time.sleep(0.5)


def metric(worker: Worker, name: str) -> float:
    """The sum of a metric's samples on ``worker``."""
    _, _, body = fetch(worker.url + "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith((name + " ", name + "{")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_transient_errors_are_retried_after_retry_after_and_accepted_once(
    fake: FakeFcmProcess, tmp_path: Path
):
    fake.script(share_429=0.1, share_503=0.1, retry_after="1")
    namespace = Namespace.fresh()
    worker = start_worker(namespace, tmp_path, fake)
    try:
        expected = pay(namespace, users_with_devices(worker, 25), "t")
        assert wait_accepted(fake, expected, timeout=150) == expected  # each exactly once
        attempts = fake.attempts()
        assert any(a["status"] in (429, 503) for a in attempts), "the script made sends fail"
        tries: dict[tuple[str, str], list[dict]] = {}
        for a in attempts:
            pair = (a["message"]["token"], a["message"]["data"]["payment_id"])
            tries.setdefault(pair, []).append(a)
        gaps = [b["at"] - a["at"] for t in tries.values() for a, b in pairwise(t)]
        # Retry-After "1" is clamped to the 10 s FCM asks for; no retry comes sooner.
        assert gaps and min(gaps) >= 9.9
        # Every try carries the identical message: the same tag, the same deadline.
        assert all(all(a["message"] == t[0]["message"] for a in t) for t in tries.values())
    finally:
        worker.stop()


def test_an_unregistered_token_removes_its_device_and_the_next_payment_skips_it(
    fake: FakeFcmProcess, tmp_path: Path
):
    namespace = Namespace.fresh()
    worker = start_worker(namespace, tmp_path, fake)
    try:
        users = users_with_devices(worker, 1)
        ((user, (gone, kept)),) = users.items()
        fake.script(unregistered_tokens=[gone])
        pay(namespace, users, "a")
        worker.wait_token(user, "d0", None)  # the gone token's device left the table
        removal = [
            json.loads(r.value)
            for r in read_topic(namespace.tokens_topic)
            if r.value and b"failed_token" in r.value
        ]
        assert [(r["device_id"], r["failed_token"], r["reason"]) for r in removal] == [
            ("d0", gone, "unregistered")
        ]
        wait_accepted(fake, pay(namespace, users, "b") - Counter({(gone, f"b-{user}"): 1}), 30)
        tried_b = {
            a["message"]["token"]
            for a in fake.attempts()
            if a["message"]["data"]["payment_id"] == f"b-{user}"
        }
        assert tried_b == {kept}
    finally:
        worker.stop()


def test_a_minute_long_outage_loses_nothing_and_the_stream_keeps_flowing(
    fake: FakeFcmProcess, tmp_path: Path
):
    namespace = Namespace.fresh()
    worker = start_worker(namespace, tmp_path, fake)
    try:
        users = users_with_devices(worker, 20)
        fake.script(outage_after_s=0, outage_for_s=60, outage_kind="503", retry_after=None)
        started = time.monotonic()
        expected: Pairs = Counter()
        lags = []
        round_ = 0
        while time.monotonic() - started < 55:
            expected += pay(namespace, users, f"o{round_}")
            round_ += 1
            time.sleep(5)
            lags.append(metric(worker, "pushes_consumer_lag"))
        assert fake.accepted() == []  # nothing got through the outage
        # The payments were consumed all along: the lag stayed bounded.
        assert max(lags) < 2 * len(users), lags
        waiting = metric(worker, "pushes_retries_waiting")
        assert waiting > 0
        accepted = wait_accepted(fake, expected, timeout=180)
        print(
            "fcm outage summary:",
            json.dumps(
                {
                    "notifications_expected": sum(expected.values()),
                    "accepted": sum(accepted.values()),
                    "accepted_twice": sum(1 for n in accepted.values() if n > 1),
                    "attempts": len(fake.attempts()),
                    "retries_waiting_at_the_end_of_the_outage": waiting,
                    "consumer_lag_samples": lags,
                }
            ),
        )
        assert accepted == expected
    finally:
        worker.stop()


def test_retries_waiting_when_the_worker_is_killed_are_delivered_once(
    fake: FakeFcmProcess, tmp_path: Path
):
    namespace = Namespace.fresh()
    worker = start_worker(namespace, tmp_path, fake)
    users = users_with_devices(worker, 10)
    fake.script(share_503=1.0, retry_after=None)
    expected = pay(namespace, users, "k")
    deadline = time.monotonic() + 60
    while metric(worker, "pushes_retries_waiting") < sum(expected.values()):
        assert time.monotonic() < deadline, "the deliveries never reached the retry schedule"
        time.sleep(0.5)
    time.sleep(3)  # the schedule's batch is in Kafka (its changelog) by now
    worker.kill()
    fake.script(share_503=0.0)
    restarted = Worker(namespace, tmp_path, "w2", **fake.env()).start().wait_ready()
    try:
        accepted = wait_accepted(fake, expected, timeout=150)
        print(
            "fcm kill summary:",
            json.dumps(
                {
                    "notifications_expected": sum(expected.values()),
                    "retries_waiting_when_killed": sum(expected.values()),
                    "accepted": sum(accepted.values()),
                    "accepted_twice": sum(1 for n in accepted.values() if n > 1),
                }
            ),
        )
        assert accepted == expected
    finally:
        restarted.stop()


def test_a_key_the_token_endpoint_rejects_holds_everything_and_prunes_nothing(
    fake: FakeFcmProcess, tmp_path: Path
):
    # A well-formed key file whose key the token endpoint does not know.
    rejected = tmp_path / "rejected.json"
    make_service_account(rejected, token_uri=fake.url + "/token")
    namespace = Namespace.fresh()
    worker = start_worker(namespace, tmp_path, fake, GOOGLE_APPLICATION_CREDENTIALS=str(rejected))
    try:
        users = users_with_devices(worker, 3)
        expected = pay(namespace, users, "m")
        deadline = time.monotonic() + 60
        while True:
            status, body = worker.request("GET", "/readyz")
            if status == 503 and "misconfigured" in str(body):
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.5)
        time.sleep(2)
        assert metric(worker, "pushes_retries_waiting") == sum(expected.values())
        assert fake.accepted() == []
        assert read_topic(namespace.env()["PUSHES_UNDELIVERABLE_TOPIC"], timeout=2) == []
        for user, toks in users.items():  # nothing pruned
            worker.wait_token(user, "d0", toks[0])
        status, answer = worker.request("GET", f"/tokens/{next(iter(users))}")
        assert status == 200 and len(answer["retries"]) == 2
        assert all("..." in r["token"] for r in answer["retries"])
    finally:
        worker.stop()
