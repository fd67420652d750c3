from app.domain.timing import grace_over, iso_to_ms, past_retention


def test_grace_window():
    assert not grace_over(1000, 1000 + 600_000, 600_000)
    assert grace_over(1000, 1001 + 600_000, 600_000)
    assert grace_over(1000, 1000, 0)  # 0 turns the grace period off


def test_retention_by_event_time():
    day = 86_400_000
    assert past_retention(0, 8 * day, 7 * day)
    assert not past_retention(day, 8 * day, 7 * day)


def test_iso_timestamps_become_epoch_milliseconds():
    assert iso_to_ms("2026-01-01T00:00:01.250+00:00") == 1767225601250
