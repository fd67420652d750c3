from app.domain.devices import apply_token_event, tokens_of
from app.domain.records import TokenEvent


def event(device, token="tok", at="2026-01-01T00:00:00.000+00:00", platform=None):
    return TokenEvent("u", device, token, platform, at)


def test_first_registration_creates_the_device():
    devices, evicted = apply_token_event(None, event("phone", platform="ios"), 10)
    assert devices == {
        "phone": {"token": "tok", "platform": "ios", "updated_at": "2026-01-01T00:00:00.000+00:00"}
    }
    assert evicted == []


def test_reregistering_a_device_replaces_its_token():
    devices, _ = apply_token_event(None, event("phone", "old"), 10)
    devices, _ = apply_token_event(devices, event("phone", "new"), 10)
    assert tokens_of(devices) == [("phone", "new")]


def test_devices_are_kept_side_by_side():
    devices, _ = apply_token_event(None, event("phone", "a"), 10)
    devices, _ = apply_token_event(devices, event("tablet", "b"), 10)
    assert tokens_of(devices) == [("phone", "a"), ("tablet", "b")]


def test_null_token_removes_the_device_and_leaves_the_input_alone():
    before, _ = apply_token_event(None, event("phone"), 10)
    after, _ = apply_token_event(before, event("phone", None), 10)
    assert after == {}
    assert "phone" in before


def test_removing_an_unknown_device_is_harmless():
    devices, evicted = apply_token_event(None, event("ghost", None), 10)
    assert devices == {} and evicted == []


def test_overflow_evicts_the_oldest_devices():
    devices = None
    for i, at in enumerate(["2026-01-03", "2026-01-01", "2026-01-02"]):
        devices, _ = apply_token_event(devices, event(f"d{i}", at=at), 3)
    devices, evicted = apply_token_event(devices, event("new", at="2026-01-04"), 3)
    assert evicted == ["d1"]
    assert sorted(devices) == ["d0", "d2", "new"]


def test_the_registering_device_is_never_the_one_evicted():
    devices, _ = apply_token_event(None, event("a", at="2026-01-05"), 1)
    devices, evicted = apply_token_event(devices, event("b", at="2026-01-01"), 1)
    assert evicted == ["a"]
    assert list(devices) == ["b"]
