"""Delivery policy: retry deadlines, the token-gone breaker, the send gate."""

from app.domain.delivery import (
    PROBE_EVERY_S,
    REST_AFTER,
    SendGate,
    TokenGoneBreaker,
    next_attempt_at,
    retry_key,
    user_prefix,
)


def test_a_retry_past_the_deadline_is_given_up():
    assert next_attempt_at(10, now_s=100, deadline_s=200) == 110
    assert next_attempt_at(100, now_s=100, deadline_s=200) is None


def test_a_users_retry_keys_share_a_prefix():
    assert retry_key("u1", "p", "failed", "d").startswith(user_prefix("u1"))
    assert not retry_key("u10", "p", "failed", "d").startswith(user_prefix("u1"))


def test_the_breaker_trips_over_the_share_with_enough_sends_and_forgets_after_the_window():
    breaker = TokenGoneBreaker(0.5, minimum=100, window_s=60)
    breaker.record(0.0, False, sends=49)
    breaker.record(0.5, True, sends=50)
    assert not breaker.tripped(0.5)  # 99 sends: too few to judge
    breaker.record(1.0, True)
    assert breaker.tripped(1.0)  # 51 of 100 gone
    assert not breaker.tripped(61.0)  # the first second left the window
    breaker.record(61.0, False, sends=1000)
    assert not breaker.tripped(61.0)


def test_a_blocked_gate_probes_once_a_minute_and_opens_on_a_delivery():
    gate = SendGate()
    gate.answered(0.0, ["misconfigured"], "SENDER_ID_MISMATCH")
    assert not gate.may_send(1.0) and gate.resume_at(1.0) == PROBE_EVERY_S
    assert gate.may_send(PROBE_EVERY_S)
    gate.answered(PROBE_EVERY_S, ["delivered"], None)
    assert gate.blocked_reason is None and gate.may_send(PROBE_EVERY_S)


def test_a_batch_of_only_retries_rests_the_gate_longer_each_time():
    gate = SendGate()
    gate.answered(0.0, ["retry"] * REST_AFTER, None)
    first = gate.resting_until
    assert first > 0 and not gate.may_send(first - 0.1) and gate.may_send(first)
    gate.answered(first, ["retry"] * REST_AFTER, None)
    assert gate.resting_until - first > first
    gate.answered(gate.resting_until, ["delivered"], None)
    assert gate.may_send(gate.resting_until)
