"""What becomes of a notification the provider did not take: the delivery stage, no Kafka."""

from __future__ import annotations

import json
from decimal import Decimal

from app.domain.dedup import notified, sent_key
from app.domain.devices import apply_token_event, mask_token
from app.domain.partitioning import user_key
from app.domain.records import Payment, TokenEvent
from app.notify.base import Outcome
from tests.unit.streams.support import Partition, Recorder


async def registered(p: Partition, *devices: str) -> None:
    for device in devices:
        await p.token(device, f"tok-{device}", 1_000)


async def test_a_retry_waits_for_retry_after_then_sends_the_identical_delivery():
    sender = Recorder()
    sender.answers["tok-a"] = Outcome.retry("QUOTA_EXCEEDED", after_s=30.0)
    p = Partition(sender)
    await registered(p, "a")
    await p.payment("p1", 2_000)
    assert p.task.retries_waiting == 1 and sender.sent == []
    first = sender.attempts[-1]

    p.clock += 29  # not due yet
    await p.end_batch()
    assert len(sender.attempts) == 1

    del sender.answers["tok-a"]
    p.clock += 2
    await p.end_batch()
    assert sender.attempts[-1] == first  # the same payload, deadline and tag
    assert p.task.retries_waiting == 0
    assert p.tables.sent[sent_key("p1", "succeeded")] == notified(2_000, ["a"])


async def test_a_retry_past_the_deadline_is_undeliverable_once():
    sender = Recorder()
    sender.answers["tok-a"] = Outcome.retry("UNAVAILABLE", after_s=3_599.0)
    p = Partition(sender)
    await registered(p, "a")
    await p.payment("p1", 2_000)
    p.clock += 3_600
    await p.end_batch()
    (raw,) = [v for topic, _, v in p.records if topic == "undeliverable"]
    record = json.loads(raw)
    assert record["outcome"] == "expired" and record["attempts"] == 2
    assert record["token"] == mask_token("tok-a") and b"tok-a" not in raw
    assert (record["payment_id"], record["device_id"]) == ("p1", "a")
    assert p.task.retries_waiting == 0


async def test_a_gone_token_produces_a_removal_of_that_token_only():
    sender = Recorder()
    sender.answers["tok-a"] = Outcome.token_gone("UNREGISTERED")
    p = Partition(sender)
    await registered(p, "a", "b")
    await p.payment("p1", 2_000)
    (removal,) = [json.loads(v) for topic, _, v in p.records if topic == "tokens"]
    assert removal == {
        "user_id": "u1",
        "device_id": "a",
        "token": None,
        "reason": "unregistered",
        "failed_token": "tok-a",
        "observed_at": removal["observed_at"],
    }
    assert p.tables.sent[sent_key("p1", "succeeded")] == notified(2_000, ["b"])


def test_a_removal_of_a_failed_token_keeps_a_device_that_registered_again():
    devices = {"a": {"token": "tok-new", "platform": None, "updated_at": "t"}}
    removal = TokenEvent("u1", "a", None, None, "t2", failed_token="tok-old", reason="unregistered")
    assert apply_token_event(devices, removal, 10)[0] == devices
    stale = TokenEvent("u1", "a", None, None, "t2", failed_token="tok-new")
    assert apply_token_event(devices, stale, 10)[0] == {}


async def test_too_many_gone_tokens_at_once_stop_the_pruning():
    sender = Recorder()
    p = Partition(sender)
    users = [f"user-{i}" for i in range(120)]
    for user in users:
        sender.answers[f"tok-{user}"] = Outcome.token_gone("UNREGISTERED")
        p.task.on_token(
            TokenEvent(user, "d", f"tok-{user}", None, "2026-01-01T00:00:00+00:00"), 1_000
        )
    await p.end_batch()
    for i, user in enumerate(users):
        p.task.on_payment(Payment(f"p{i}", user, "succeeded", Decimal(1), "RUB"), 2_000)
    await p.end_batch()
    removals = [v for topic, _, v in p.records if topic == "tokens"]
    # Over half of 100 sends said "gone": from then on, nothing more is removed.
    assert len(removals) == 100
    assert p.task.retries_waiting == 20  # the rest wait, their devices kept


async def test_a_misconfigured_sender_holds_everything_and_prunes_nothing():
    sender = Recorder()
    sender.answers["tok-a"] = Outcome.misconfigured("SENDER_ID_MISMATCH", "wrong sender")
    p = Partition(sender)
    await registered(p, "a")
    await p.payment("p1", 2_000)
    assert p.stage.blocked is not None
    await p.payment("p2", 2_001)  # not even tried while blocked
    assert len(sender.attempts) == 1 and p.task.retries_waiting == 2
    assert [t for t, _, _ in p.records] == []  # nothing pruned, nothing undeliverable
    assert user_key("u1") in p.tables.tokens

    del sender.answers["tok-a"]  # fixed; the next probe is a minute later
    p.clock += 61
    await p.end_batch()
    assert p.stage.blocked is None
    assert sorted(body for _, body in sender.sent) == [
        "Payment p1 of 100.00 RUB succeeded",
        "Payment p2 of 100.00 RUB succeeded",
    ]


async def test_a_provider_in_trouble_rests_the_sender_instead_of_slowing_every_batch():
    sender = Recorder()
    p = Partition(sender)
    users = [f"r{i}" for i in range(6)]
    for user in users:
        sender.answers[f"tok-{user}"] = Outcome.retry("UNAVAILABLE")
        p.task.on_token(
            TokenEvent(user, "d", f"tok-{user}", None, "2026-01-01T00:00:00+00:00"), 1_000
        )
    await p.end_batch()
    for user in users:
        p.task.on_payment(Payment(f"p-{user}", user, "succeeded", Decimal(1), "RUB"), 2_000)
    await p.end_batch()
    assert len(sender.attempts) == len(users)
    p.task.on_payment(Payment("p-late", users[0], "failed", Decimal(1), "RUB"), 2_001)
    await p.end_batch()
    assert len(sender.attempts) == len(users)  # resting: scheduled, not sent
    assert p.task.retries_waiting == len(users) + 1
