import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from app.faust_fixes.commit_clock import CommitClockFix, CommitTimes

A, B, C = TP("payments", 0), TP("payments", 1), TP("push-tokens", 0)


def test_a_partition_counts_from_its_assignment_until_its_first_commit():
    times = CommitTimes()
    times.on_assigned({A, B}, now=100.0)
    assert times.seconds_since(A, 130.0) == 30.0
    times.on_committed([A], now=120.0)
    assert times.seconds_since(A, 130.0) == 10.0
    assert times.seconds_since(B, 130.0) == 30.0


def test_a_partition_kept_through_a_rebalance_keeps_its_clock():
    times = CommitTimes()
    times.on_assigned({A}, now=100.0)
    times.on_committed([A], now=110.0)
    times.on_assigned({A, B}, now=150.0)
    assert times.seconds_since(A, 160.0) == 50.0  # not reset by the new assignment
    assert times.seconds_since(B, 160.0) == 10.0


def test_a_revoked_partition_is_forgotten_and_counts_afresh_when_it_comes_back():
    times = CommitTimes()
    times.on_assigned({A, B}, now=100.0)
    times.on_committed([B], now=105.0)
    times.on_assigned({A}, now=200.0)
    assert times.seconds_since(B, 210.0) is None
    times.on_assigned({A, B}, now=300.0)
    assert times.seconds_since(B, 310.0) == 10.0


def test_an_unknown_partition_has_no_value():
    assert CommitTimes().seconds_since(C, 1.0) is None


class Consumer(CommitClockFix):
    """The fix alone, without a running Faust consumer behind it."""

    def __init__(self) -> None:
        self.commit_times = CommitTimes()


@pytest.fixture
def faust_commit(monkeypatch):
    calls: list[dict[TP, int]] = []
    result = {"committed": True}

    async def _commit(self, offsets):
        calls.append(dict(offsets))
        return result["committed"]

    async def on_partitions_assigned(self, assigned, generation_id=0):
        calls.append({tp: -1 for tp in assigned})

    monkeypatch.setattr(faust_aiokafka.Consumer, "_commit", _commit)
    monkeypatch.setattr(faust_aiokafka.Consumer, "on_partitions_assigned", on_partitions_assigned)
    return calls, result


async def test_only_a_commit_kafka_accepted_moves_the_clock(faust_commit, monkeypatch):
    calls, result = faust_commit
    now = {"t": 100.0}
    monkeypatch.setattr("app.faust_fixes.commit_clock.time.monotonic", lambda: now["t"])
    consumer = Consumer()
    await consumer.on_partitions_assigned({A, B})
    now["t"] = 110.0
    result["committed"] = False
    assert await consumer._commit({A: 5}) is False
    assert consumer.commit_times.seconds_since(A, 120.0) == 20.0  # still from the assignment
    result["committed"] = True
    assert await consumer._commit({A: 6}) is True
    assert consumer.commit_times.seconds_since(A, 120.0) == 10.0
    assert consumer.commit_times.seconds_since(B, 120.0) == 20.0
    assert calls == [{A: -1, B: -1}, {A: 5}, {A: 6}]  # Faust's own calls, unchanged
