import json

from app.ops.lag import consumer_lag
from app.ops.sizes import count_users_and_devices


def test_users_and_devices_are_counted_from_the_device_maps():
    values = [
        json.dumps({"phone": {"token": "a"}, "tablet": {"token": "b"}}).encode(),
        json.dumps({"default": {"token": "c"}}).encode(),
        b"not json",
    ]
    assert count_users_and_devices(values) == (3, 3)
    assert count_users_and_devices([]) == (0, 0)


def test_lag_is_highwater_minus_committed():
    assert consumer_lag(100, 90) == 10
    assert consumer_lag(100, 100) == 0
    assert consumer_lag(100, 120) == 0  # a stale highwater never shows as negative
    assert consumer_lag(None, 5) is None and consumer_lag(5, None) is None


def test_devices_not_registered_again_for_30_days_are_stale():
    import json as _json

    from app.ops.sizes import count_devices

    values = [
        _json.dumps(
            {
                "a": {"token": "t", "updated_at": "2026-10-01T00:00:00.000+00:00"},
                "b": {"token": "t", "updated_at": "2026-11-30T00:00:00.000+00:00"},
            }
        ).encode()
    ]
    assert count_devices(values, stale_before="2026-11-01T00:00:00.000+00:00") == (1, 2, 1)
