import pytest

from app.ops.readiness import (
    Contact,
    ReadinessState,
    StartupFlags,
    broker_reachable,
    not_ready_reason,
)

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


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"broker_silence": 10.0}, "no successful round trip to the Kafka broker for 10 s"),
        ({"broker_silence": 31.4, "recovery_completed": False}, "Kafka broker for 31 s"),
        ({"in_group": False}, "rejoining its group"),
        ({"coordinator_silence": 12.0}, "has not confirmed this worker's membership for 12 s"),
    ],
)
def test_a_silent_broker_or_a_lost_membership_is_named(change, reason):
    assert reason in not_ready_reason(ReadinessState(**{**READY, **change}))


def test_silence_below_the_threshold_is_still_ready():
    state = ReadinessState(
        **READY, broker_silence=9.9, coordinator_silence=9.9, unreachable_after=10.0
    )
    assert not_ready_reason(state) is None


def test_the_threshold_is_the_setting_and_named_in_the_reason():
    state = ReadinessState(**READY, broker_silence=4.0, unreachable_after=3.0)
    assert "PUSHES_BROKER_UNREACHABLE_SECONDS=3" in not_ready_reason(state)
    assert not_ready_reason(ReadinessState(**READY, broker_silence=4.0)) is None


def test_a_silent_broker_is_reported_before_the_startup_steps_it_blocks():
    state = ReadinessState(False, False, False, False, broker_silence=60.0)
    assert "Kafka broker" in not_ready_reason(state)
    # ... but shutting down is said first: nothing else matters then.
    stopping = ReadinessState(**READY, stopping=True, broker_silence=60.0)
    assert "shutting down" in not_ready_reason(stopping)


def test_a_rebalance_is_reported_rather_than_the_membership_it_is_renewing():
    state = ReadinessState(
        **{**READY, "rebalancing": True}, in_group=False, coordinator_silence=30.0
    )
    assert "rebalance is in progress" in not_ready_reason(state)


@pytest.mark.parametrize(
    ("silence", "limit", "reachable"),
    [(None, 10.0, True), (0.0, 10.0, True), (9.99, 10.0, True), (10.0, 10.0, False)],
)
def test_reachable_until_the_silence_reaches_the_threshold(silence, limit, reachable):
    assert broker_reachable(silence, limit) is reachable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_contact_counts_silence_from_the_start_then_from_each_answer():
    clock = Clock()
    contact = Contact(clock)
    assert contact.silence() is None  # not started: nothing to say yet
    contact.start()
    clock.now += 4
    assert contact.silence() == 4.0 and contact.last_answer is None
    contact.answered()
    assert contact.silence() == 0.0 and contact.last_answer == 104.0
    clock.now += 2.5
    assert contact.silence() == 2.5
    contact.start()  # a second start changes nothing
    assert contact.silence() == 2.5


def test_an_answer_before_any_start_starts_the_count():
    clock = Clock()
    contact = Contact(clock)
    contact.answered()
    clock.now += 1
    assert contact.silence() == 1.0


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
