"""The stream handlers driven with plain dicts and a recording sender: no Kafka, no Faust."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from app.domain.dedup import held, notified, sent_key
from app.domain.partitioning import user_key
from app.domain.records import Payment, TokenEvent
from app.streams.context import PartitionTables, Rules
from app.streams.partition import PartitionState
from app.streams.payments import on_payment
from app.streams.retention import sweep
from app.streams.tokens import on_token

MINUTE = 60_000
RULES = Rules(
    grace_ms=10 * MINUTE,
    retention_ms=60 * MINUTE,
    max_devices=3,
    max_pending=2,
    sweep_every_s=30.0,
)


class Recorder:
    """A sender that records what it was asked to send, and can fail for some tokens."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.sent: list[tuple[str, str]] = []
        self.failing = failing

    async def send(
        self, token: str, message: str, *, payment_id: str | None = None, user_id: str | None = None
    ) -> None:
        if token in self.failing:
            raise ConnectionError("provider down")
        self.sent.append((token, message))


def tables() -> PartitionTables:
    return PartitionTables(tokens={}, sent={}, pending={})


def payment(pid: str, user: str = "u1", status: str = "succeeded") -> Payment:
    return Payment(pid, user, status, Decimal("100"), "RUB")


def token(device: str, tok: str | None, at_ms: int, user: str = "u1") -> TokenEvent:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(at_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
    return TokenEvent(user, device, tok, "android", when)


def message(pid: str) -> str:
    return f"Payment {pid} of 100.00 RUB succeeded"


async def test_every_device_gets_a_payment_once_and_a_replay_sends_nothing():
    t, state, sender = tables(), PartitionState(), Recorder()
    await on_token(token("phone", "tok-p", 1_000), t, state, RULES, sender)
    await on_token(token("tablet", "tok-t", 2_000), t, state, RULES, sender)
    for _ in range(2):  # the second time is a replay
        await on_payment(payment("p1"), 3_000, t, state, RULES, sender)
    assert sender.sent == [("tok-p", message("p1")), ("tok-t", message("p1"))]
    assert t.sent[sent_key("p1", "succeeded")] == notified(3_000, ["phone", "tablet"])


async def test_a_payment_without_a_token_goes_to_every_device_registered_within_its_grace():
    t, state, sender = tables(), PartitionState(), Recorder()
    await on_payment(payment("p1"), 1_000, t, state, RULES, sender)
    assert sender.sent == []
    assert [e["payment"]["payment_id"] for e in t.pending[user_key("u1")]] == ["p1"]
    assert t.sent[sent_key("p1", "succeeded")] == held(1_000)

    await on_token(token("phone", "tok-p", 1_000 + MINUTE), t, state, RULES, sender)
    await on_token(token("tablet", "tok-t", 1_000 + 2 * MINUTE), t, state, RULES, sender)
    assert sender.sent == [("tok-p", message("p1")), ("tok-t", message("p1"))]
    assert t.sent[sent_key("p1", "succeeded")] == notified(1_000, ["phone", "tablet"])
    # It waits until its grace ends; then a device registered later gets nothing.
    assert user_key("u1") in t.pending
    await on_token(token("watch", "tok-w", 1_000 + RULES.grace_ms + 1), t, state, RULES, sender)
    assert [tok for tok, _ in sender.sent] == ["tok-p", "tok-t"]
    assert user_key("u1") not in t.pending


async def test_a_pending_payment_past_its_grace_is_dropped_when_a_token_comes():
    t, state, sender = tables(), PartitionState(), Recorder()
    await on_payment(payment("p1"), 1_000, t, state, RULES, sender)
    await on_token(token("phone", "tok-p", 1_000 + RULES.grace_ms + 1), t, state, RULES, sender)
    assert sender.sent == []
    assert user_key("u1") not in t.pending


async def test_without_grace_a_payment_without_devices_is_reported_and_never_sent():
    rules = Rules(grace_ms=0, retention_ms=MINUTE, max_devices=3, max_pending=2, sweep_every_s=1)
    t, state, sender = tables(), PartitionState(), Recorder()
    await on_payment(payment("p1"), 1_000, t, state, rules, sender)
    assert t.pending == {}
    await on_token(token("phone", "tok-p", 2_000), t, state, rules, sender)
    # A replay of the payment once the user has a token stays held.
    await on_payment(payment("p1"), 1_000, t, state, rules, sender)
    assert sender.sent == []


async def test_a_payment_older_than_the_clock_by_more_than_the_grace_is_not_kept():
    t, state, sender = tables(), PartitionState(), Recorder()
    state.advance(1_000 + RULES.grace_ms + 1)
    await on_payment(payment("p1"), 1_000, t, state, RULES, sender)
    assert t.pending == {}
    assert t.sent[sent_key("p1", "succeeded")] == held(1_000)


async def test_pending_payments_over_the_limit_drop_the_oldest():
    t, state, sender = tables(), PartitionState(), Recorder()
    for i in range(3):
        await on_payment(payment(f"p{i}"), 1_000 + i, t, state, RULES, sender)
    await on_token(token("phone", "tok-p", 2_000), t, state, RULES, sender)
    assert sender.sent == [("tok-p", message("p1")), ("tok-p", message("p2"))]


async def test_a_device_that_failed_is_not_remembered_as_notified():
    t, state = tables(), PartitionState()
    await on_token(token("a", "tok-a", 1_000), t, state, RULES, Recorder())
    await on_token(token("b", "tok-b", 1_000), t, state, RULES, Recorder())
    await on_payment(payment("p1"), 2_000, t, state, RULES, Recorder(frozenset({"tok-b"})))
    assert t.sent[sent_key("p1", "succeeded")] == notified(2_000, ["a"])


async def test_a_replay_sends_nothing_even_to_devices_registered_since():
    t, state, sender = tables(), PartitionState(), Recorder()
    await on_token(token("a", "tok-a", 1_000), t, state, RULES, sender)
    await on_payment(payment("p1"), 2_000, t, state, RULES, sender)
    await on_token(token("b", "tok-b", 3_000), t, state, RULES, sender)
    await on_payment(payment("p1"), 2_000, t, state, RULES, sender)
    assert sender.sent == [("tok-a", message("p1"))]


async def test_devices_past_the_limit_evict_the_oldest_and_removals_empty_the_user():
    t, state, sender = tables(), PartitionState(), Recorder()
    for i, device in enumerate(["a", "b", "c", "d"]):
        await on_token(token(device, f"tok-{device}", 1_000 + i), t, state, RULES, sender)
    assert sorted(t.tokens[user_key("u1")]) == ["b", "c", "d"]
    for device in ["b", "c", "d"]:
        await on_token(token(device, None, 2_000), t, state, RULES, sender)
    assert user_key("u1") not in t.tokens


def scanner(t: PartitionTables):
    def scan(name: str, after: bytes | None, limit: int):
        table: dict[bytes, Any] = getattr(t, name)
        keys = sorted(k for k in table if after is None or k > after)[:limit]
        return [(k, json.dumps(table[k]).encode()) for k in keys]

    return scan


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("elapsed, swept", [(10.0, False), (30.0, True)])
async def test_sweeps_drop_expired_state_at_most_every_interval(elapsed, swept):
    t, state, sender, clock = tables(), PartitionState(), Recorder(), Clock()
    await on_payment(payment("old"), 1_000, t, state, RULES, sender)  # pending, held
    sweep(t, state, RULES, scanner(t), clock)  # the first sweep runs at once: nothing is old
    assert sent_key("old", "succeeded") in t.sent and t.pending

    state.advance(1_000 + RULES.retention_ms + 1)
    clock.now += elapsed
    sweep(t, state, RULES, scanner(t), clock)
    assert (sent_key("old", "succeeded") not in t.sent) is swept
    assert (user_key("u1") not in t.pending) is swept


def test_partition_state_is_kept_for_partitions_still_assigned():
    from app.streams.partition import Partitions

    partitions = Partitions()
    partitions.assign({0, 1})
    partitions[0].advance(5_000)
    partitions[1].advance(7_000)
    partitions.assign({1, 2})
    assert partitions[1].stream_time == 7_000
    assert partitions[2].stream_time == 0
    partitions.assign({0})
    assert partitions[0].stream_time == 0  # it left and came back: rebuilt
