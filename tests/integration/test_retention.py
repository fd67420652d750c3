"""Event-time retention: dedup records and pending payments really leave the store."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from app.domain.dedup import sent_key
from app.domain.partitioning import canonical_partition
from tests.integration.harness import Namespace, Worker, notification, payment, produce
from tests.integration.kafka_tools import read_topic


@pytest.fixture(scope="module")
def worker(namespace: Namespace, tmp_path_factory: pytest.TempPathFactory):
    w = Worker(
        namespace,
        tmp_path_factory.mktemp("retention"),
        PUSHES_SENT_RETENTION_SECONDS="60",
        PUSHES_LATE_TOKEN_GRACE_SECONDS="5",
        PUSHES_SWEEP_INTERVAL_SECONDS="1",
    )
    w.start().wait_ready()
    yield w
    w.stop()


def at(delta: timedelta) -> str:
    return (datetime.now(timezone.utc) + delta).isoformat()


def neighbour(user: str) -> str:
    """Another user on the same canonical partition."""
    while True:
        other = f"n-{uuid.uuid4().hex[:8]}"
        if canonical_partition(other, 8) == canonical_partition(user, 8):
            return other


def test_an_expired_dedup_record_is_deleted(worker: Worker, namespace: Namespace):
    user, token = f"r-{uuid.uuid4().hex[:8]}", "retention-" + uuid.uuid4().hex
    worker.register(user, token)
    worker.wait_token(user, "default", token)
    old = payment(f"old-{user}", user, occurred_at=at(-timedelta(hours=2)))
    produce(namespace.payments_topic, [(user.encode(), old)])
    line = notification(token, f"Payment old-{user} of 100.00 RUB succeeded")
    worker.wait_for(line)

    time.sleep(1.5)  # the next event of the partition may sweep it
    fresh = payment(f"new-{user}", user, occurred_at=at(timedelta(0)))
    produce(namespace.payments_topic, [(user.encode(), fresh)])
    worker.wait_for(notification(token, f"Payment new-{user} of 100.00 RUB succeeded"))

    # The record left the store: a tombstone is in its changelog...
    key = sent_key(f"old-{user}", "succeeded")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        history = [
            r.value for r in read_topic(f"{namespace.app_id}-sent-changelog") if r.key == key
        ]
        if history and history[-1] is None:
            break
        time.sleep(0.5)
    assert history[0] is not None and history[-1] is None, history
    # ...and the same event, seen again, is no longer recognised.
    produce(namespace.payments_topic, [(user.encode(), old)])
    worker.wait_for(line, count=2)


def test_a_pending_payment_is_dropped_when_event_time_passes_its_grace(
    worker: Worker, namespace: Namespace
):
    user = f"p-{uuid.uuid4().hex[:8]}"
    produce(namespace.payments_topic, [(user.encode(), payment(f"wait-{user}", user))])
    worker.wait_for(f"no push token for user {user} yet: payment wait-{user} (succeeded) waits")

    time.sleep(1.5)
    # A later event on the same partition moves its clock past the grace period.
    other = neighbour(user)
    later = payment(f"tick-{other}", other, occurred_at=at(timedelta(seconds=30)))
    produce(namespace.payments_topic, [(other.encode(), later)])
    worker.wait_for(
        f"no push token for user {user}: payment wait-{user} (succeeded) dropped, "
        "its grace period ended before a token came"
    )

    token = "too-late-" + uuid.uuid4().hex
    worker.register(user, token)
    worker.wait_token(user, "default", token)
    time.sleep(2)
    assert worker.lines(token) == []
