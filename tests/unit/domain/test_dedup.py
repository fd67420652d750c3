from app.domain.dedup import event_time, held, is_held, notified, notified_devices, sent_key


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


def test_a_held_record_notifies_nobody():
    record = held(7)
    assert is_held(record) and notified_devices(record) == frozenset()
    assert event_time(record) == 7
    assert not is_held(None) and notified_devices(None) == frozenset()
