from decimal import Decimal

from app.domain.join import event_time_ms, plan_deliveries
from app.domain.records import Payment

PAYMENT = Payment("p-1", "42", "succeeded", Decimal("1"), "EUR")


def test_event_time_prefers_occurred_at():
    p = Payment("p", "u", "failed", Decimal(1), "EUR", occurred_at="2026-01-01T00:00:01.000+00:00")
    assert event_time_ms(p, 5.0) == 1767225601000


def test_event_time_falls_back_to_the_record_timestamp():
    assert event_time_ms(PAYMENT, 1767225601.5) == 1767225601500


def test_every_device_is_planned_once():
    todo, suppressed = plan_deliveries([("a", "ta"), ("b", "tb")], frozenset())
    assert [(d.device_id, d.token) for d in todo] == [("a", "ta"), ("b", "tb")]
    assert suppressed == 0


def test_already_notified_devices_are_suppressed():
    todo, suppressed = plan_deliveries([("a", "ta"), ("b", "tb")], {"a"})
    assert [d.device_id for d in todo] == ["b"]
    assert suppressed == 1
