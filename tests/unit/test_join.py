from decimal import Decimal

from app.join import event_time_ms, plan_deliveries, within_grace
from app.models import Payment
from tables.sent import event_time, expired, held, is_held, notified, notified_devices, sent_key

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


def test_a_failure_after_a_success_has_its_own_key():
    assert sent_key("p-1", "succeeded") != sent_key("p-1", "failed")


def test_sent_keys_do_not_collide_across_fields():
    assert sent_key("a", "bc") != sent_key("ab", "c")
    assert sent_key("p", "failed") != sent_key("p", "succeeded")


def test_sent_records_say_who_was_notified():
    record = notified(5, ["b", "a"])
    assert record == {"at": 5, "devices": ["a", "b"]}
    assert notified_devices(record) == {"a", "b"} and not is_held(record)
    assert event_time(record) == 5


def test_records_of_the_per_device_format_still_expire():
    # Their value was the bare event time; sweeps read every record of a partition.
    assert event_time(1234) == 1234


def test_a_held_record_notifies_nobody():
    record = held(7)
    assert is_held(record) and notified_devices(record) == frozenset()
    assert event_time(record) == 7
    assert not is_held(None) and notified_devices(None) == frozenset()


def test_grace_window():
    assert within_grace(1000, 1000 + 600_000, 600_000)
    assert not within_grace(1000, 1001 + 600_000, 600_000)
    assert not within_grace(1000, 1000, 0)  # 0 turns the grace period off


def test_retention_by_event_time():
    day = 86_400_000
    assert expired(0, 8 * day, 7 * day)
    assert not expired(day, 8 * day, 7 * day)
