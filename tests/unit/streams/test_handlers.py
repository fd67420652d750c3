"""The stream handlers on an in-memory partition task and a recording sender: no Kafka."""

from __future__ import annotations

import dataclasses

import pytest

from app.domain.dedup import held, notified, sent_key
from app.domain.partitioning import user_key
from app.streams.task import PartitionTask
from app.topics import TABLES
from tests.unit.streams.support import (
    MINUTE,
    RULES,
    Clock,
    MemoryStore,
    Partition,
    Recorder,
    Rules,
)


def message(pid: str) -> str:
    return f"Payment {pid} of 100.00 RUB succeeded"


async def test_every_device_gets_a_payment_once_and_a_replay_sends_nothing():
    p = Partition()
    await p.token("phone", "tok-p", 1_000)
    await p.token("tablet", "tok-t", 2_000)
    for _ in range(2):  # the second time is a replay
        await p.payment("p1", 3_000)
    assert p.sent == [("tok-p", message("p1")), ("tok-t", message("p1"))]
    assert p.tables.sent[sent_key("p1", "succeeded")] == notified(3_000, ["phone", "tablet"])


async def test_a_payment_twice_in_one_batch_is_planned_once():
    p = Partition()
    await p.token("phone", "tok-p", 1_000)
    await p.payment("p1", 2_000, batch_end=False)
    await p.payment("p1", 2_000, batch_end=False)
    await p.end_batch()
    assert p.sent == [("tok-p", message("p1"))]


async def test_a_payment_without_a_token_goes_to_every_device_registered_within_its_grace():
    p = Partition()
    await p.payment("p1", 1_000)
    assert p.sent == []
    assert [e["payment"]["payment_id"] for e in p.tables.pending[user_key("u1")]] == ["p1"]
    assert p.tables.sent[sent_key("p1", "succeeded")] == held(1_000)

    await p.token("phone", "tok-p", 1_000 + MINUTE)
    await p.token("tablet", "tok-t", 1_000 + 2 * MINUTE)
    assert p.sent == [("tok-p", message("p1")), ("tok-t", message("p1"))]
    assert p.tables.sent[sent_key("p1", "succeeded")] == notified(1_000, ["phone", "tablet"])
    # It waits until its grace ends; then a device registered later gets nothing.
    assert user_key("u1") in p.tables.pending
    await p.token("watch", "tok-w", 1_000 + RULES.grace_ms + 1)
    assert [tok for tok, _ in p.sent] == ["tok-p", "tok-t"]
    assert user_key("u1") not in p.tables.pending


async def test_a_pending_payment_past_its_grace_is_dropped_when_a_token_comes():
    p = Partition()
    await p.payment("p1", 1_000)
    await p.token("phone", "tok-p", 1_000 + RULES.grace_ms + 1)
    assert p.sent == []
    assert user_key("u1") not in p.tables.pending


async def test_without_grace_a_payment_without_devices_is_reported_and_never_sent():
    rules = Rules(grace_ms=0, retention_ms=MINUTE, max_devices=3, max_pending=2, sweep_every_s=1)
    p = Partition(rules=rules)
    await p.payment("p1", 1_000)
    assert user_key("u1") not in p.tables.pending
    await p.token("phone", "tok-p", 2_000)
    # A replay of the payment once the user has a token stays held.
    await p.payment("p1", 1_000)
    assert p.sent == []


async def test_a_payment_older_than_the_clock_by_more_than_the_grace_is_not_kept():
    p = Partition()
    p.state.advance(1_000 + RULES.grace_ms + 1)
    await p.payment("p1", 1_000)
    assert user_key("u1") not in p.tables.pending
    assert p.tables.sent[sent_key("p1", "succeeded")] == held(1_000)


async def test_pending_payments_over_the_limit_drop_the_oldest():
    p = Partition()
    for i in range(3):
        await p.payment(f"p{i}", 1_000 + i)
    await p.token("phone", "tok-p", 2_000)
    assert p.sent == [("tok-p", message("p1")), ("tok-p", message("p2"))]


async def test_a_device_that_failed_is_not_remembered_as_notified():
    p = Partition(Recorder(frozenset({"tok-b"})))
    await p.token("a", "tok-a", 1_000)
    await p.token("b", "tok-b", 1_000)
    await p.payment("p1", 2_000)
    assert p.tables.sent[sent_key("p1", "succeeded")] == notified(2_000, ["a"])
    assert p.task.retries_waiting == 1  # b waits in the retry schedule


async def test_a_replay_sends_nothing_even_to_devices_registered_since():
    p = Partition()
    await p.token("a", "tok-a", 1_000)
    await p.payment("p1", 2_000)
    await p.token("b", "tok-b", 3_000)
    await p.payment("p1", 2_000)
    assert p.sent == [("tok-a", message("p1"))]


async def test_devices_past_the_limit_evict_the_oldest_and_removals_empty_the_user():
    p = Partition()
    for i, device in enumerate(["a", "b", "c", "d"]):
        await p.token(device, f"tok-{device}", 1_000 + i)
    assert sorted(p.tables.tokens[user_key("u1")]) == ["b", "c", "d"]
    for device in ["b", "c", "d"]:
        await p.token(device, None, 2_000)
    assert user_key("u1") not in p.tables.tokens


async def test_a_sweep_step_reads_a_bounded_number_of_keys_and_the_next_goes_on_from_there():
    rules = dataclasses.replace(RULES, sweep_batch=2)
    p = Partition(rules=rules)
    for i in range(5):
        await p.payment(f"p{i}", 1_000, user=f"u{i}")  # no device: each user has one pending
    await p.end_batch()
    p.state.advance(1_000 + RULES.retention_ms + 1)
    left = []
    for _ in range(3):
        p.monotonic.now += rules.sweep_every_s
        p.task.sweep()
        await p.end_batch()
        left.append(len(p.stores["sent"].data) + len(p.stores["pending"].data))
    # Two keys of each table per step; all five of each gone after three steps.
    assert left == [6, 2, 0]


async def test_pending_payments_still_waiting_do_not_hide_the_expired_ones_behind_them():
    rules = dataclasses.replace(RULES, sweep_batch=2)
    p = Partition(rules=rules)
    now = 1_000 + RULES.retention_ms + 1
    for user in ("b0", "b1", "b2"):  # expired by the time of the sweeps
        await p.payment(f"{user}-pay", 1_000, user=user)
    for user in ("a0", "a1"):  # first in key order, and within their grace
        await p.payment(f"{user}-pay", now - 1_000, user=user)
    assert len(p.stores["pending"].data) == 5
    p.state.advance(now)
    for _ in range(3):
        p.monotonic.now += rules.sweep_every_s
        p.task.sweep()
        await p.end_batch()
    assert sorted(p.stores["pending"].data) == [user_key("a0"), user_key("a1")]


async def test_a_partitions_first_sweep_waits_for_its_offset():
    stores = {name: MemoryStore(name) for name in TABLES}
    clock = Clock()
    offset = RULES.sweep_every_s / 2
    task = PartitionTask(1, stores, RULES, clock, sweep_offset_s=offset)  # type: ignore[arg-type]
    scanned: list[str] = []
    for name in ("pending", "sent"):
        stores[name].scan = lambda after, limit, name=name: scanned.append(name) or []  # type: ignore[method-assign]
    clock.now += offset - 0.1
    task.sweep()
    assert scanned == []
    clock.now += 0.1
    task.sweep()
    assert scanned == ["pending", "sent"]


@pytest.mark.parametrize("elapsed, swept", [(10.0, False), (30.0, True)])
async def test_sweeps_drop_expired_state_at_most_every_interval(elapsed, swept):
    p = Partition()
    await p.payment("old", 1_000)  # pending, held
    p.task.sweep()  # at once: nothing is old
    await p.end_batch()
    assert sent_key("old", "succeeded") in p.tables.sent and user_key("u1") in p.tables.pending

    p.state.advance(1_000 + RULES.retention_ms + 1)
    p.monotonic.now += elapsed
    p.task.sweep()
    await p.end_batch()
    assert (sent_key("old", "succeeded") not in p.tables.sent) is swept
    assert (user_key("u1") not in p.tables.pending) is swept
