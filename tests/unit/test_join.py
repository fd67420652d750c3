from decimal import Decimal

from app.join import event_time_ms, plan_deliveries, within_grace
from app.models import Payment
from tables.sent import expired, sent_key

PAYMENT = Payment("p-1", "42", "succeeded", Decimal("1"), "EUR")


def test_event_time_prefers_occurred_at():
    p = Payment("p", "u", "failed", Decimal(1), "EUR", occurred_at="2026-01-01T00:00:01.000+00:00")
    assert event_time_ms(p, 5.0) == 1767225601000


def test_event_time_falls_back_to_the_record_timestamp():
    assert event_time_ms(PAYMENT, 1767225601.5) == 1767225601500


def test_every_device_is_planned_once():
    todo, suppressed = plan_deliveries(PAYMENT, [("a", "ta"), ("b", "tb")], lambda k: False)
    assert [(d.device_id, d.token) for d in todo] == [("a", "ta"), ("b", "tb")]
    assert suppressed == 0
    assert todo[0].key == sent_key("p-1", "succeeded", "a")


def test_already_sent_devices_are_suppressed():
    done = {sent_key("p-1", "succeeded", "a")}
    todo, suppressed = plan_deliveries(PAYMENT, [("a", "ta"), ("b", "tb")], done.__contains__)
    assert [d.device_id for d in todo] == ["b"]
    assert suppressed == 1


def test_a_failure_after_a_success_is_another_notification():
    done = {sent_key("p-1", "succeeded", "a")}
    failed = Payment("p-1", "42", "failed", Decimal("1"), "EUR")
    todo, suppressed = plan_deliveries(failed, [("a", "ta")], done.__contains__)
    assert len(todo) == 1 and suppressed == 0


def test_sent_keys_do_not_collide_across_fields():
    assert sent_key("a", "b", "c") != sent_key("a\x1fb", "c", "")
    assert sent_key("p", "failed", "d") != sent_key("p", "succeeded", "d")


def test_grace_window():
    assert within_grace(1000, 1000 + 600_000, 600_000)
    assert not within_grace(1000, 1001 + 600_000, 600_000)
    assert not within_grace(1000, 1000, 0)  # 0 turns the grace period off


def test_retention_by_event_time():
    day = 86_400_000
    assert expired(0, 8 * day, 7 * day)
    assert not expired(day, 8 * day, 7 * day)
