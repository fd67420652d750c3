"""The FCM message a delivery becomes."""

import json
import re

import pytest

from app.notify.base import Delivery, collapse_key, with_deadline
from app.notify.fake_fcm import check_send_body
from app.notify.fcm import build_message, encode_request


def delivery(**changes):
    base = {
        "user_id": "42",
        "device_id": "d-1",
        "token": "tok-abc",
        "platform": "ios",
        "title": "Payment",
        "body": "Payment p-1 of 100.00 RUB succeeded",
        "payment_id": "p-1",
        "status": "succeeded",
        "amount": "100.00",
        "currency": "RUB",
    }
    return Delivery(**{**base, **changes})


def test_the_message_carries_token_text_and_string_data():
    d = delivery()
    message = build_message(d, ttl_s=3600, expires_at=1_800_000_000.7)
    assert message["token"] == d.token
    assert message["notification"] == {"title": d.title, "body": d.body}
    assert message["data"] == {
        "payment_id": d.payment_id,
        "status": d.status,
        "amount": d.amount,
        "currency": d.currency,
    }
    assert all(isinstance(value, str) for value in message["data"].values())


def test_android_is_high_priority_with_a_duration_ttl():
    android = build_message(delivery(), ttl_s=900, expires_at=0)["android"]
    assert android["priority"] == "high"
    assert re.fullmatch(r"\d+s", android["ttl"])
    assert int(android["ttl"][:-1]) == 900


def test_apns_headers_are_strings_with_the_absolute_expiry():
    headers = build_message(delivery(), ttl_s=3600, expires_at=1_800_000_123.9)["apns"]["headers"]
    assert all(isinstance(value, str) for value in headers.values())
    assert int(headers["apns-expiration"]) == 1_800_000_123
    assert headers["apns-priority"] == "10"
    assert headers["apns-push-type"] == "alert"


def test_tag_and_collapse_id_are_one_key_of_payment_and_status():
    message = build_message(delivery(), ttl_s=60, expires_at=0)
    tag = message["android"]["notification"]["tag"]
    assert tag == message["apns"]["headers"]["apns-collapse-id"]
    assert tag == collapse_key("p-1", "succeeded")
    assert collapse_key("p-1", "failed") != tag
    assert collapse_key("p-2", "succeeded") != tag


@pytest.mark.parametrize("payment_id", ["x" * 200, "платёж-1", "p:1:succeeded", "a" * 55, "ü" * 30])
def test_collapse_keys_fit_apns_and_stay_distinct(payment_id):
    key = collapse_key(payment_id, "succeeded")
    assert len(key.encode()) <= 64
    assert key == collapse_key(payment_id, "succeeded")
    assert key != collapse_key(payment_id, "failed")


def test_a_long_payment_id_still_builds_a_valid_message():
    message = build_message(delivery(payment_id="p" * 300), ttl_s=60, expires_at=10)
    assert len(message["apns"]["headers"]["apns-collapse-id"].encode()) <= 64
    assert check_send_body({"message": message}) is None


def test_every_retry_of_one_delivery_builds_the_same_bytes():
    d = with_deadline(delivery(), now=1_800_000_000.0, ttl_s=3600)
    first = encode_request(build_message(d, ttl_s=3600, expires_at=d.expires_at))
    again = with_deadline(d, now=1_800_000_999.0, ttl_s=3600)
    assert again.expires_at == d.expires_at
    assert encode_request(build_message(again, ttl_s=3600, expires_at=again.expires_at)) == first
    assert json.loads(first)["message"]["token"] == d.token


def test_with_deadline_sets_one_only_when_missing():
    d = with_deadline(delivery(), now=100.0, ttl_s=60)
    assert d.expires_at == 160.0
    assert with_deadline(d, now=500.0, ttl_s=60).expires_at == 160.0


def test_the_token_is_not_in_a_deliverys_repr():
    assert "tok-abc" not in repr(delivery())


def test_our_message_passes_the_fakes_validation():
    assert check_send_body({"message": build_message(delivery(), ttl_s=3600, expires_at=5)}) is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda m: m["data"].update(amount=100), "message.data[2].value"),
        (lambda m: m["android"].update(ttl="1h"), "message.android.ttl"),
        (lambda m: m["android"].update(ttl="99999999s"), "ttl value is too large"),
        (lambda m: m["android"].update(priority="urgent"), "message.android.priority"),
        (lambda m: m["apns"]["headers"].update({"apns-collapse-id": "k" * 65}), "64 bytes"),
        (lambda m: m["apns"]["headers"].update({"apns-expiration": 5}), "headers[0].value"),
        (lambda m: m.pop("token"), "Recipient"),
        (lambda m: m.update(topic="news"), "Exactly one"),
        (lambda m: m.update(colour="red"), 'Unknown name "colour"'),
        (lambda m: m["data"].update({"from": "x"}), "Invalid data payload key"),
        (lambda m: m["notification"].update(body="x" * 5000), "too big"),
    ],
)
def test_the_fake_refuses_what_fcm_refuses(change, needle):
    message = build_message(delivery(), ttl_s=3600, expires_at=5)
    change(message)
    problem = check_send_body({"message": message})
    assert problem is not None
    assert needle in problem.message + " ".join(name or "" for name, _ in problem.violations)
    assert problem.body()["error"]["status"] == "INVALID_ARGUMENT"
