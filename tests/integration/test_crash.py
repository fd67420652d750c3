"""Exactly one notification per payment outcome and device, through crashes.

Several workers on one machine, tokens and payments from mixed producers,
duplicates and bad records, while one worker is killed with SIGKILL and
restarted, another rebuilds its state from the changelog, and a third joins.
At the end every count is exact.  Slow (minutes): ``make test`` runs it,
``make test-fast`` does not.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Namespace, Worker, payment, produce
from tests.integration.kafka_tools import dead_letters, produce_librdkafka, read_topic

pytestmark = pytest.mark.slow

USERS = 3000
PAYMENTS = 20_000
BAD_RECORDS = 60
DUPLICATE_SHARE = 0.05
UNKNOWN_SHARE = 0.10
BATCH = 100
MARKER = "send notification to mobile app with token: "
NO_TOKEN = re.compile(r"no push token for user (\S+): payment (\S+) \((\w+)\) not notified")


def _devices(rng: random.Random, user: str) -> dict[str, str]:
    count = rng.choice([1, 1, 1, 1, 2, 3])
    return {f"d{i}": f"tok:{user}:d{i}:{uuid.uuid4().hex}" for i in range(count)}


def _token_value(user: str, device: str, token: str) -> bytes:
    return json.dumps({"user_id": user, "device_id": device, "token": token}).encode()


class Chaos:
    """Workers of one test, and the log of what was done to them."""

    def __init__(self, namespace: Namespace, workdir: Path, dlq: str) -> None:
        self.env = {
            "PUSHES_LATE_TOKEN_GRACE_SECONDS": "0",
            "PUSHES_DEAD_LETTER_TOPIC": dlq,
            # The duplicate window is the batch in progress when a worker dies;
            # smaller batches keep it inside WINDOW_S on a loaded test machine.
            "PUSHES_BATCH_MAX_RECORDS": str(BATCH),
        }
        self.namespace = namespace
        self.workdir = workdir
        self.workers: list[Worker] = []

    def add(self) -> Worker:
        name = f"w{len(self.workers) + 1}"
        worker = Worker(self.namespace, self.workdir, name, **self.env).start()
        self.workers.append(worker)
        return worker

    def lines(self, needle: str) -> list[str]:
        return [line for w in self.workers for line in w.lines(needle)]

    def notifications(self) -> Counter[str]:
        return Counter(line.split(MARKER, 1)[1].strip() for line in self.lines(MARKER))

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the whole scenario once; the tests below each check one promise."""
    rng = random.Random(20261127)
    namespace = Namespace.fresh()
    dlq = namespace.app_id + "-dlq"
    chaos = Chaos(namespace, tmp_path_factory.mktemp("crash"), dlq)
    w1, w2 = chaos.add(), chaos.add()
    w1.wait_ready()
    w2.wait_ready()
    try:
        return _run(chaos, namespace, dlq, rng, w1, w2)
    finally:
        chaos.stop_all()


def test_no_notification_is_sent_twice_outside_the_documented_window(outcome):
    duplicates = outcome["duplicates"]
    assert not duplicates.keys() - outcome["in_window"], list(duplicates.items())[:5]


def test_nothing_but_the_expected_notifications_is_sent(outcome):
    assert not outcome["extra"], outcome["extra"][:5]


def test_no_unknown_user_is_reported_twice_outside_the_documented_window(outcome):
    # A report, like a notification, is logged before its "held" record
    # reaches Kafka: the killed worker's last batch may be reported again.
    twice = {k for k, v in outcome["reported"].items() if v > 1}
    assert not twice - outcome["reports_in_window"], sorted(twice)[:5]
    assert set(outcome["reported"].values()) <= {1, 2}
    assert set(outcome["reported"]) <= outcome["unknown"]


def test_every_bad_record_is_dead_lettered_once(outcome):
    assert len(outcome["letters"]) == BAD_RECORDS
    assert set(outcome["sources"].values()) == {1}


def test_no_rebalance_waits_for_records_that_will_never_be_acked(outcome):
    # Faust logs this after about ten seconds of wait_empty: a rebalance held
    # up by records no agent is working on.
    assert not outcome["stalls"], outcome["stalls"][:2]


def test_every_payment_is_notified_or_reported(outcome):
    assert not outcome["missing"], outcome["missing"][:5]
    assert set(outcome["reported"]) == outcome["unknown"]


def _run(
    chaos: Chaos, namespace: Namespace, dlq: str, rng: random.Random, w1: Worker, w2: Worker
) -> dict[str, Any]:
    # --- tokens: the API on both workers, aiokafka and librdkafka ------------
    users = [f"u{i}-{uuid.uuid4().hex[:6]}" for i in range(USERS)]
    devices = {u: _devices(rng, u) for u in users}
    token_events = 0
    via_api, via_aiokafka, via_librdkafka = users[:150], users[150:800], users[800:]
    for i, u in enumerate(via_api):
        for device, token in devices[u].items():
            (w1 if i % 2 else w2).register(u, token, device_id=device)
            token_events += 1
    aiokafka_records, librdkafka_records = [], []
    for u in via_aiokafka:
        for device, token in devices[u].items():
            key = u.encode() if rng.random() < 0.5 else uuid.uuid4().bytes
            aiokafka_records.append((key, _token_value(u, device, token)))
    for u in via_librdkafka:
        for device, token in devices[u].items():
            librdkafka_records.append((u.encode(), _token_value(u, device, token)))
    token_events += len(aiokafka_records) + len(librdkafka_records)
    produce(namespace.tokens_topic, aiokafka_records)
    produce_librdkafka(namespace.tokens_topic, librdkafka_records)
    # Wait until the table holds every device: the changelog's last value per
    # user (a batch writes each changed user once) lists all of them.
    _wait(lambda: _devices_in_changelog(namespace) >= token_events, 180)

    # --- payments: known and unknown users, duplicates, bad records ----------
    expected: Counter[str] = Counter()
    unknown: set[tuple[str, str, str]] = set()
    records: list[tuple[str, bytes | None, bytes]] = []
    for i in range(PAYMENTS):
        pid, status = f"pay-{i}", ("failed" if rng.random() < 0.2 else "succeeded")
        reason = {"reason": "insufficient funds"} if status == "failed" else {}
        if rng.random() < UNKNOWN_SHARE:
            user = f"ghost-{i}"
            unknown.add((user, pid, status))
        else:
            user = rng.choice(users)
            text = f"Payment {pid} of 100.00 RUB {status}" + (
                ": insufficient funds" if reason else ""
            )
            for token in devices[user].values():
                expected[f"{token} and message: {text}"] = 1
        body = payment(pid, user, status, **reason)
        producer = rng.choices(["user", "payment", "none", "librdkafka"], [5, 2, 1, 2])[0]
        key = {"user": user.encode(), "payment": pid.encode(), "none": None}.get(
            producer, user.encode()
        )
        records.append((producer, key, body))
        if rng.random() < DUPLICATE_SHARE:  # a retried or repeated produce
            records.append((rng.choice(["user", "librdkafka"]), user.encode(), body))
    bad = [(b"bad", f"{{broken json {i}".encode()) for i in range(BAD_RECORDS // 2)] + [
        (None, json.dumps({"payment_id": f"b{i}", "user_id": None}).encode())
        for i in range(BAD_RECORDS // 2)
    ]
    for item in bad:
        records.insert(rng.randrange(len(records)), ("user", *item))

    # --- stream them while the workers are hurt ------------------------------
    chunks = [records[i : i + 500] for i in range(0, len(records), 500)]
    events: dict[str, float] = {}
    done = threading.Event()

    def stream() -> None:
        for chunk in chunks:
            aio = [(k, v) for p, k, v in chunk if p != "librdkafka"]
            rdk = [(k, v) for p, k, v in chunk if p == "librdkafka"]
            produce(namespace.payments_topic, aio)
            produce_librdkafka(namespace.payments_topic, rdk)
            time.sleep(0.25)
        done.set()

    producer_thread = threading.Thread(target=stream, daemon=True)
    producer_thread.start()

    _wait(lambda: len(chaos.lines(MARKER)) > len(expected) // 5, 120)
    w1.kill()
    events["killed"] = time.time()
    last_words = _final_lines(w1, MARKER)
    last_reports = {
        NO_TOKEN.search(line).groups() for line in _final_lines(w1, "not notified", whole=True)
    }
    # Failover: the first notification by w2 for a user only w1 had notified.
    w1_users = {_token_user(line) for line in w1.lines(MARKER)} - {
        _token_user(line) for line in w2.lines(MARKER)
    }
    probe_user = sorted(w1_users)[0]
    probe_token = next(iter(devices[probe_user].values()))
    produce(namespace.payments_topic, [(probe_user.encode(), payment("probe", probe_user))])
    w2.wait_for(f"{probe_token} and message: Payment probe of 100.00 RUB succeeded", 120)
    events["failover_s"] = time.time() - events["killed"]
    expected[f"{probe_token} and message: Payment probe of 100.00 RUB succeeded"] = 1
    for token in list(devices[probe_user].values())[1:]:
        expected[f"{token} and message: Payment probe of 100.00 RUB succeeded"] = 1

    w1.start().wait_ready()  # restarted with its state
    w2.stop()
    shutil.rmtree(w2.datadir)  # rebuilt from the changelog alone
    w2.start().wait_ready()
    chaos.add().wait_ready()  # a third worker: another rebalance

    assert done.wait(600), "the producer did not finish"
    # Wait while the workers make progress; the assertions below say what is off.
    _settle(lambda: len(chaos.lines(MARKER)) >= len(expected), lambda: len(chaos.lines(MARKER)))
    _settle(lambda: len(chaos.lines("not notified")) >= len(unknown), lambda: 0)
    _settle(lambda: len(dead_letters(dlq)) >= BAD_RECORDS, lambda: 0)
    time.sleep(5)  # anything extra would show up now
    (chaos.workdir / "expected.txt").write_text("\n".join(sorted(expected)))

    # --- exact counts -----------------------------------------------------------
    seen_texts = chaos.notifications()
    duplicates = {k: v for k, v in seen_texts.items() if v > 1}
    # The documented limit: a line logged just before SIGKILL, whose "sent"
    # record had not reached Kafka yet, is sent again by the new owner.
    in_window = {k for k, v in duplicates.items() if v == 2 and k in last_words}
    missing = [k for k in expected if k not in seen_texts]
    extra = [k for k in seen_texts if k not in expected]
    reported = Counter(NO_TOKEN.search(line).groups() for line in chaos.lines("not notified"))
    letters = dead_letters(dlq)
    sources = Counter((d["source"]["partition"], d["source"]["offset"]) for d in letters)
    stalls = chaos.lines(STALL)
    summary: dict[str, Any] = {
        "payments": PAYMENTS,
        "records_produced": len(records) + 1,
        "notifications_expected": len(expected),
        "notifications_logged": sum(seen_texts.values()),
        "duplicates": len(duplicates),
        "duplicates_in_kill_window": len(in_window),
        "reports_twice": sum(1 for v in reported.values() if v > 1),
        "missing": len(missing),
        "extra": len(extra),
        "unknown_user_payments": len(unknown),
        "unknown_reported": sum(reported.values()),
        "dead_letters": len(letters),
        "failover_seconds": round(events["failover_s"], 2),
        "rebalance_stall_warnings": len(stalls),
    }
    print("crash test summary:", json.dumps(summary))
    return {
        "duplicates": duplicates,
        "in_window": in_window,
        "missing": missing,
        "extra": extra,
        "reported": reported,
        "reports_in_window": last_reports,
        "unknown": unknown,
        "letters": letters,
        "sources": sources,
        "stalls": stalls,
    }


STALL = "wait_empty: Waiting for tasks"

# Lines the killed worker logged this close to its end belong to its last
# batch, whose records Kafka may not have had yet (one batch of BATCH
# payments, plus the wait for Kafka, on a machine shared by three workers).
WINDOW_S = 0.25


def _final_lines(worker: Worker, marker: str, whole: bool = False) -> set[str]:
    """Lines with ``marker`` a killed worker logged in its last WINDOW_S seconds
    (counted back from its last notification): the text after the marker, or
    the ``whole`` line."""
    end = _stamp(worker.lines(MARKER)[-1])
    return {
        line if whole else line.split(marker, 1)[1].strip()
        for line in worker.lines(marker)
        if (end - _stamp(line)).total_seconds() <= WINDOW_S
    }


def _stamp(line: str) -> datetime:
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")


def _token_user(line: str) -> str:
    token = line.split(MARKER, 1)[1].split(" ", 1)[0]
    return token.split(":")[1]


def _settle(condition: Any, progress: Any, quiet: float = 30.0) -> None:
    """Wait until ``condition``, or until ``progress()`` stops changing for ``quiet`` s."""
    last, since = progress(), time.monotonic()
    while not condition() and time.monotonic() - since < quiet:
        time.sleep(1)
        now = progress()
        if now != last:
            last, since = now, time.monotonic()


def _devices_in_changelog(namespace: Namespace) -> int:
    latest: dict[bytes | None, bytes | None] = {}
    for record in read_topic(f"{namespace.app_id}-tokens-changelog"):
        latest[record.key] = record.value
    return sum(len(json.loads(value)) for value in latest.values() if value is not None)


def _wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(1)
