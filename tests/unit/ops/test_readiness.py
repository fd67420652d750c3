import pytest

from app.ops.readiness import ReadinessState, StartupFlags, not_ready_reason

READY = {
    "topics_checked": True,
    "joined_group": True,
    "recovery_completed": True,
    "rebalancing": False,
}


def test_ready_once_everything_is_done():
    assert not_ready_reason(ReadinessState(**READY)) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"topics_checked": False}, "topic check"),
        ({"joined_group": False}, "not joined the consumer group"),
        ({"recovery_completed": False}, "table recovery"),
        ({"rebalancing": True}, "rebalance is in progress"),
        ({"stopping": True}, "shutting down"),
    ],
)
def test_each_missing_step_is_named(change, reason):
    assert reason in not_ready_reason(ReadinessState(**{**READY, **change}))


def test_the_first_missing_step_in_startup_order_is_reported():
    state = ReadinessState(False, False, False, False)
    assert "topic check" in not_ready_reason(state)


def test_the_topic_check_has_passed_once_it_recorded_its_topics():
    flags = StartupFlags()
    assert not flags.topics_checked
    flags.checked_topics = frozenset({"payments"})
    assert flags.topics_checked


def test_a_misconfigured_sender_makes_the_worker_not_ready_and_says_why():
    state = ReadinessState(
        topics_checked=True,
        joined_group=True,
        recovery_completed=True,
        rebalancing=False,
        sender_blocked="SENDER_ID_MISMATCH: wrong sender",
    )
    reason = not_ready_reason(state)
    assert reason is not None and "misconfigured (SENDER_ID_MISMATCH" in reason
