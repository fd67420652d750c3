from datetime import datetime, timezone
from decimal import Decimal

import pytest

from app.domain.records import (
    DEFAULT_DEVICE_ID,
    InvalidRecord,
    decode_json,
    normalize_user_id,
    parse_payment,
    parse_token_event,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
PAYMENT = {
    "payment_id": "p-1",
    "user_id": 42,
    "status": "succeeded",
    "amount": "100",
    "currency": "RUB",
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(42, "42"), ("42", "42"), ("  42 ", "42"), ("user-ä", "user-ä"), (0, "0")],
)
def test_user_ids_normalise_to_one_string(raw, expected):
    assert normalize_user_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "string or an integer"),
        (True, "string or an integer"),
        (4.2, "string or an integer"),
        ([1], "string or an integer"),
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("a\x00b", "control characters"),
        ("a\nb", "control characters"),
        ("x" * 257, "over the limit of 256"),
        (10**300, "over the limit of 256"),
    ],
)
def test_bad_user_ids_are_refused_with_a_reason(raw, reason):
    with pytest.raises(InvalidRecord, match=reason) as caught:
        normalize_user_id(raw)
    assert caught.value.code == "bad_user_id"


def test_user_id_unicode_forms_are_one_user():
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert normalize_user_id(composed) == normalize_user_id(decomposed)


def test_registration_defaults_device_and_timestamp():
    event = parse_token_event({"user_id": 7, "token": "tok"}, now=NOW)
    assert event.user_id == "7"
    assert event.device_id == DEFAULT_DEVICE_ID
    assert event.platform is None
    assert event.token == "tok"
    assert event.updated_at == "2026-01-02T03:04:05.000+00:00"


def test_registration_keeps_device_platform_and_given_timestamp():
    event = parse_token_event(
        {
            "user_id": "u",
            "token": "t",
            "device_id": "phone",
            "platform": "ios",
            "updated_at": "2026-01-01T00:00:00Z",
        }
    )
    assert (event.device_id, event.platform) == ("phone", "ios")
    assert event.updated_at == "2026-01-01T00:00:00.000+00:00"


def test_null_token_is_a_removal():
    event = parse_token_event({"user_id": "u", "device_id": "d", "token": None})
    assert event.token is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([], "JSON object"),
        ({"token": "t"}, "user_id"),
        ({"user_id": 1}, "token is required"),
        ({"user_id": 1, "token": 5}, "token must be a string"),
        ({"user_id": 1, "token": ""}, "token must not be empty"),
        ({"user_id": 1, "token": "t" * 4097}, "token is 4097 characters"),
        ({"user_id": 1, "token": "t", "device_id": 3}, "device_id must be a string"),
        ({"user_id": 1, "token": "t", "platform": "x" * 33}, "platform is 33"),
        ({"user_id": 1, "token": "t", "updated_at": "yesterday"}, "ISO 8601"),
    ],
)
def test_bad_registrations_are_refused(data, reason):
    with pytest.raises(InvalidRecord, match=reason):
        parse_token_event(data)


def test_payment_parses_and_normalises():
    payment = parse_payment(
        {**PAYMENT, "currency": "rub", "occurred_at": "2026-01-01T10:00:00+03:00"}
    )
    assert payment.user_id == "42"
    assert payment.amount == Decimal("100")
    assert payment.currency == "RUB"
    assert payment.occurred_at == "2026-01-01T07:00:00.000+00:00"
    assert payment.reason is None


def test_payment_amount_from_json_number_keeps_decimal_precision():
    payment = parse_payment(
        decode_json(
            b'{"payment_id":"p","user_id":1,"status":"failed",'
            b'"amount":0.1,"currency":"EUR","reason":"r"}',
            1000,
        )
    )
    assert payment.amount == Decimal("0.1")
    assert payment.reason == "r"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "refunded"}, "status must be one of"),
        ({"status": None}, "status is required"),
        ({"amount": "ten"}, "not a decimal number"),
        ({"amount": "-1"}, ">= 0"),
        ({"amount": "NaN"}, "finite"),
        ({"amount": True}, "decimal string or a number"),
        ({"amount": None}, "amount is required"),
        ({"amount": "1e30"}, "too large"),
        ({"currency": "RUBLE"}, "3-letter"),
        ({"currency": 643}, "currency must be a string"),
        ({"payment_id": ""}, "payment_id must not be empty"),
        ({"payment_id": None}, "payment_id is required"),
        ({"user_id": {"id": 1}}, "user_id"),
        ({"occurred_at": "soon"}, "ISO 8601"),
        ({"reason": 12}, "reason must be a string"),
    ],
)
def test_bad_payments_are_refused(change, reason):
    with pytest.raises(InvalidRecord, match=reason):
        parse_payment({**PAYMENT, **change})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "null record"),
        (b"\xff\xfe", "UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"x" * 101, "over the 100 byte limit"),
    ],
)
def test_decode_refuses_unreadable_values(raw, reason):
    with pytest.raises(InvalidRecord, match=reason):
        decode_json(raw, 100)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "null_value"),
        (b"\xff", "not_utf8"),
        (b"{", "not_json"),
        (b"x" * 101, "too_large"),
        (b"[]", "not_object"),
        (b'{"user_id": 1, "status": "succeeded"}', "missing_field"),
        (b'{"payment_id": 1, "user_id": 1}', "wrong_type"),
        (b'{"payment_id": "p", "user_id": 1, "status": "x"}', "unknown_status"),
        (b'{"payment_id": "p", "user_id": null}', "bad_user_id"),
        (b'{"payment_id": "p", "user_id": 1, "status": "failed", "amount": "-1"}', "invalid_value"),
    ],
)
def test_every_refusal_has_a_reason_code(raw, code):
    with pytest.raises(InvalidRecord) as caught:
        parse_payment(decode_json(raw, 100))
    assert caught.value.code == code


def test_limits_hold_for_the_value_as_sent_before_it_is_trimmed():
    with pytest.raises(InvalidRecord, match="control characters"):
        parse_token_event({"user_id": "u", "device_id": "d\n\n", "token": None})
    with pytest.raises(InvalidRecord, match="over the limit"):
        parse_token_event({"user_id": "u", "device_id": "d" + " " * 300, "token": None})
    event = parse_token_event({"user_id": " u ", "device_id": " d ", "token": None})
    assert (event.user_id, event.device_id) == ("u", "d")
