"""Processing order on the real broker: both topics already hold records when the worker starts.

Every scenario produces its token events and payments, with explicit Kafka
timestamps, before any worker runs, then starts one (or two) and compares
the notification lines with those event time prescribes: a payment goes to
every device registered at or before its event time and not removed by
then, and a payment whose user had none goes to every device registered
within the late-token grace period.  The payments are produced *first*, so
reading the topics in any order but event time would miss lines.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.harness import Namespace, Worker, notification
from tests.integration.kafka_tools import create_topics, produce_at

pytestmark = pytest.mark.slow

MARKER = "send notification to mobile app with token: "
HOUR_MS = 3_600_000
GRACE_S = 600


@dataclass
class Scenario:
    """Records to produce (key, value, Kafka timestamp) and the lines they must give."""

    tokens: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    payments: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    expected: Counter[str] = field(default_factory=Counter)
    #: Payments whose user had no device yet and that reach several devices later.
    late_to_several: int = 0

    def token(
        self, user: str, device: str, token: str | None, at_ms: int, stamped: bool = True
    ) -> None:
        body: dict[str, object] = {"user_id": user, "device_id": device, "token": token}
        if stamped:
            body["updated_at"] = _iso(at_ms)
        self.tokens.append((user.encode(), json.dumps(body).encode(), at_ms))

    def payment(self, pid: str, user: str, at_ms: int, devices: list[str], key: str = "") -> None:
        body = {
            "payment_id": pid,
            "user_id": user,
            "status": "succeeded",
            "amount": "100",
            "currency": "RUB",
        }
        self.payments.append(((key or user).encode(), json.dumps(body).encode(), at_ms))
        for token in devices:
            self.expected[notification(token, f"Payment {pid} of 100.00 RUB succeeded")] += 1


def _iso(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def backlog(seed: int, users: int, base_ms: int, *, grace: bool) -> Scenario:
    """Users registering, replacing and removing devices, and their payments in between.

    Each payment's expected devices follow from event time alone.  With
    ``grace`` some users pay before their first device and get every device
    registered within the grace period.
    """
    rng = random.Random(seed)
    s = Scenario()
    for u in range(users):
        user = f"u{seed}-{u}"
        history: list[tuple[int, str, str | None]] = []  # (time, device, token or None)
        t = base_ms + rng.randrange(0, 60_000)
        for d in range(rng.randint(1, 5)):
            history.append((t, f"d{d}", f"tok-{user}-d{d}-{rng.getrandbits(40):x}"))
            t += rng.randrange(1, 20_000)
        if rng.random() < 0.3:  # a removal (semantics b: a payment before it still reaches it)
            history.append((t + rng.randrange(1, 10_000), "d0", None))
        if rng.random() < 0.2:  # a new token for a device
            history.append((t + rng.randrange(1, 10_000), "d1", f"tok-{user}-d1-new"))
        for at, device, token in history:
            s.token(user, device, token, at, stamped=rng.random() < 0.5)
        first = history[0][0]
        for p in range(rng.randint(1, 4)):
            waits = grace and p == 0 and rng.random() < 0.3
            at = first - rng.randrange(1, 5_000) if waits else first + rng.randrange(0, 90_000)
            pid = f"p{seed}-{u}-{p}"
            devices = _devices_at(history, at)
            if not devices and grace:
                devices = _devices_at(history, at + GRACE_S * 1000, since=at)
                s.late_to_several += len(devices) > 1
            key = pid if rng.random() < 0.3 else ""  # keyed by payment id: off its partition
            s.payment(pid, user, at, devices, key=key)
    return s


def _devices_at(
    history: list[tuple[int, str, str | None]], at: int, since: int | None = None
) -> list[str]:
    """The tokens a user's devices hold at ``at`` (token events first on a tie).

    With ``since``, every token registered in ``(since, at]`` instead: the
    devices a pending payment reaches within its grace.
    """
    if since is not None:
        first: dict[str, str] = {}  # a device gets a payment once, at its first token
        for t, device, token in sorted(history, key=lambda h: h[0]):
            if since < t <= at and token is not None:
                first.setdefault(device, token)
        return sorted(first.values())
    current: dict[str, str] = {}
    for t, device, token in sorted(history, key=lambda h: h[0]):
        if t > at:
            break
        if token is None:
            current.pop(device, None)
        else:
            current[device] = token
    return sorted(current.values())


def run(
    s: Scenario,
    workdir: Path,
    *,
    workers: int = 1,
    batch: int = 0,
    grace: int = 0,
    extra: dict[str, str] | None = None,
) -> Counter[str]:
    """Produce ``s`` (payments first), start the workers, return the lines they logged."""
    workdir.mkdir(parents=True, exist_ok=True)
    namespace = Namespace.fresh()
    create_topics({namespace.tokens_topic: 8, namespace.payments_topic: 8})
    # Each topic in time order, as producers append; but all payments first.
    produce_at(namespace.payments_topic, sorted(s.payments, key=lambda r: r[2]), batch)
    produce_at(namespace.tokens_topic, sorted(s.tokens, key=lambda r: r[2]), batch)
    env = {"PUSHES_LATE_TOKEN_GRACE_SECONDS": str(grace), **(extra or {})}
    started = [Worker(namespace, workdir, f"w{i}", **env).start() for i in range(workers)]
    try:
        for w in started:
            w.wait_ready()
        total = sum(s.expected.values())
        deadline = time.monotonic() + 120
        lines: Counter[str] = Counter()
        while time.monotonic() < deadline:
            lines = Counter(
                MARKER + line.split(MARKER, 1)[1].strip()
                for w in started
                for line in w.lines(MARKER)
            )
            if sum(lines.values()) >= total:
                break
            time.sleep(0.5)
        time.sleep(2)  # anything extra shows up now
        return Counter(
            MARKER + line.split(MARKER, 1)[1].strip() for w in started for line in w.lines(MARKER)
        )
    finally:
        for w in started:
            w.stop()


def assert_exact(lines: Counter[str], expected: Counter[str]) -> None:
    missing, extra = expected - lines, lines - expected
    assert not missing and not extra, (
        f"{sum(missing.values())} missing, {sum(extra.values())} extra of "
        f"{sum(expected.values())}: {list(missing)[:3]} {list(extra)[:3]}"
    )


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_backlog_without_grace_notifies_every_device_registered_before_each_payment(
    tmp_path: Path,
) -> None:
    s = backlog(1, users=300, base_ms=now_ms() - HOUR_MS, grace=False)
    assert_exact(run(s, tmp_path, grace=0), s.expected)


def test_a_backlog_with_the_default_grace_is_exact_and_late_devices_all_get_it(
    tmp_path: Path,
) -> None:
    s = backlog(2, users=300, base_ms=now_ms() - HOUR_MS, grace=True)
    assert s.late_to_several > 10  # semantics c: not only the first late device
    assert_exact(run(s, tmp_path, grace=GRACE_S), s.expected)


def test_a_device_removed_after_a_payment_still_gets_it(tmp_path: Path) -> None:
    base = now_ms() - HOUR_MS
    s = Scenario()
    s.token("b-user", "phone", "tok-b-phone", base)  # t1
    s.payment("b-pay", "b-user", base + 1_000, ["tok-b-phone"])  # t2
    s.token("b-user", "phone", None, base + 2_000)  # t3
    s.payment("b-after", "b-user", base + 3_000, [])
    assert_exact(run(s, tmp_path, grace=0), s.expected)


def test_the_same_input_gives_the_same_lines_whatever_the_interleaving(tmp_path: Path) -> None:
    base = now_ms() - HOUR_MS
    s = backlog(4, users=150, base_ms=base, grace=True)
    runs = [
        run(s, tmp_path / "one", grace=GRACE_S),
        run(s, tmp_path / "three", batch=50, grace=GRACE_S),
    ]
    for lines in runs:
        assert_exact(lines, s.expected)


def test_two_workers_give_the_same_lines_as_one(tmp_path: Path) -> None:
    # A payment keyed off its user's partition, on a partition the other
    # worker reads, reaches its user's worker through the canonical topic;
    # it must meet exactly the devices one worker would have given it.
    s = backlog(5, users=600, base_ms=now_ms() - HOUR_MS, grace=True)
    hopped = {
        json.loads(value)["payment_id"] for key, value, _ in s.payments
        if key != json.loads(value)["user_id"].encode()
    }  # fmt: skip
    assert 0 < len(hopped) < len(s.payments)
    # Small batches: the first worker must not be through the backlog alone
    # before the second has joined.
    small = {"PUSHES_BATCH_MAX_RECORDS": "5"}
    assert_exact(run(s, tmp_path, workers=2, batch=7, grace=GRACE_S, extra=small), s.expected)


def test_payments_hours_old_find_tokens_registered_seconds_before_them(tmp_path: Path) -> None:
    # A backlog after an outage: every record is hours old, tokens carry no
    # updated_at, so their event time is their Kafka timestamp, seconds before
    # each payment; they must not move the clock past the payments.
    base = now_ms() - 3 * HOUR_MS
    s = Scenario()
    for i in range(400):
        user, at = f"e-{i}", base + i * 1_000
        s.token(user, "phone", f"tok-e-{i}", at - 5_000, stamped=False)
        s.payment(f"e-pay-{i}", user, at, [f"tok-e-{i}"])
    assert_exact(run(s, tmp_path, grace=GRACE_S), s.expected)
