"""FCM HTTP v1 answers -> outcomes.

The bodies are FCM's documented error shapes (see the reference notes on push
providers): written out here, not produced by the fake, so the classifier and
the fake cannot share a mistake.
"""

import random
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from app.notify.base import (
    RETRY_AFTER_MAX_S,
    RETRY_AFTER_MIN_S,
    Outcome,
    clamp_retry_after,
    classify_fcm_response,
    next_delay,
    parse_fcm_error,
    parse_retry_after,
    short_text,
    wants_credential_refresh,
)

NOW = 1_800_000_000.0
FCM = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


def body(code, status, message, *details):
    error = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return {"error": error}


def fcm(error_code):
    return {"@type": FCM, "errorCode": error_code}


UNREGISTERED = body(404, "NOT_FOUND", "Requested entity was not found.", fcm("UNREGISTERED"))
INVALID_TOKEN = body(
    400,
    "INVALID_ARGUMENT",
    "The registration token is not a valid FCM registration token",
    fcm("INVALID_ARGUMENT"),
)
INVALID_PAYLOAD = body(
    400,
    "INVALID_ARGUMENT",
    "Invalid value at 'message.data[0].value' (TYPE_STRING), 123",
    {
        "@type": BAD_REQUEST,
        "fieldViolations": [
            {
                "field": "message.data[0].value",
                "description": "Invalid value at 'message.data[0].value' (TYPE_STRING), 123",
            }
        ],
    },
)
INVALID_ARGUMENT_GENERIC = body(
    400, "INVALID_ARGUMENT", "Request contains an invalid argument.", fcm("INVALID_ARGUMENT")
)
SENDER_ID_MISMATCH = body(403, "PERMISSION_DENIED", "SenderId mismatch", fcm("SENDER_ID_MISMATCH"))
QUOTA_EXCEEDED = body(
    429,
    "RESOURCE_EXHAUSTED",
    "Quota exceeded for quota metric 'Send requests'.",
    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
    fcm("QUOTA_EXCEEDED"),
)
UNAVAILABLE = body(503, "UNAVAILABLE", "The service is currently unavailable.", fcm("UNAVAILABLE"))
INTERNAL = body(500, "INTERNAL", "Internal error encountered.", fcm("INTERNAL"))
THIRD_PARTY_AUTH = body(
    401,
    "UNAUTHENTICATED",
    "Auth error from APNS or Web Push Service",
    fcm("THIRD_PARTY_AUTH_ERROR"),
)
OAUTH_401 = body(
    401,
    "UNAUTHENTICATED",
    "Request had invalid authentication credentials. Expected OAuth 2 access token.",
    {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_EXPIRED"},
)
PERMISSION_403 = body(
    403, "PERMISSION_DENIED", "Permission 'cloudmessaging.messages.create' denied."
)


@pytest.mark.parametrize(
    ("status", "answer", "kind", "code"),
    [
        (404, UNREGISTERED, "token_gone", "UNREGISTERED"),
        (400, INVALID_TOKEN, "token_gone", "INVALID_ARGUMENT"),
        (400, INVALID_PAYLOAD, "rejected", "INVALID_ARGUMENT"),
        (400, INVALID_ARGUMENT_GENERIC, "rejected", "INVALID_ARGUMENT"),
        (403, SENDER_ID_MISMATCH, "misconfigured", "SENDER_ID_MISMATCH"),
        (429, QUOTA_EXCEEDED, "retry", "QUOTA_EXCEEDED"),
        (503, UNAVAILABLE, "retry", "UNAVAILABLE"),
        (500, INTERNAL, "retry", "INTERNAL"),
        (401, THIRD_PARTY_AUTH, "misconfigured", "THIRD_PARTY_AUTH_ERROR"),
        (401, OAUTH_401, "misconfigured", "UNAUTHENTICATED"),
        (403, PERMISSION_403, "misconfigured", "PERMISSION_DENIED"),
    ],
)
def test_every_documented_fcm_error(status, answer, kind, code):
    outcome = classify_fcm_response(status, {}, answer, now=NOW)
    assert (outcome.kind, outcome.error_code) == (kind, code)
    assert outcome.error == answer["error"]["message"]


def test_success_carries_the_message_name():
    outcome = classify_fcm_response(200, {}, {"name": "projects/p/messages/7"}, now=NOW)
    assert outcome == Outcome.delivered("projects/p/messages/7")
    assert outcome.ok


def test_the_fcm_detail_wins_over_the_top_level_status():
    # UNREGISTERED comes with the canonical NOT_FOUND; a bare NOT_FOUND (a wrong
    # project or base URL) must not prune anybody's token.
    assert classify_fcm_response(404, {}, UNREGISTERED, now=NOW).kind == "token_gone"
    bare = body(404, "NOT_FOUND", "Requested entity was not found.")
    assert classify_fcm_response(404, {}, bare, now=NOW).kind == "misconfigured"
    html = "<html>Not Found</html>"
    assert classify_fcm_response(404, {}, html, now=NOW).kind == "misconfigured"


def test_a_registration_token_message_with_a_payload_violation_keeps_the_token():
    mixed = body(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        fcm("INVALID_ARGUMENT"),
        {
            "@type": BAD_REQUEST,
            "fieldViolations": [{"field": "message.android.ttl", "description": "bad ttl"}],
        },
    )
    assert classify_fcm_response(400, {}, mixed, now=NOW).kind == "rejected"
    on_token = body(
        400,
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
        fcm("INVALID_ARGUMENT"),
        {"@type": BAD_REQUEST, "fieldViolations": [{"field": "message.token"}]},
    )
    assert classify_fcm_response(400, {}, on_token, now=NOW).kind == "token_gone"


def test_the_registration_token_message_without_the_fcm_detail_is_not_trusted():
    # Only FCM's own INVALID_ARGUMENT detail may cost a user their token.
    plain = body(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM token")
    assert classify_fcm_response(400, {}, plain, now=NOW).kind == "rejected"


@pytest.mark.parametrize(("status", "kind"), [(502, "retry"), (504, "retry"), (408, "retry")])
def test_gateway_errors_without_a_body_are_retried(status, kind):
    assert classify_fcm_response(status, {}, None, now=NOW).kind == kind


def test_unknown_client_errors_drop_the_message():
    outcome = classify_fcm_response(413, {}, None, now=NOW)
    assert (outcome.kind, outcome.error_code) == ("rejected", "HTTP_413")


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("120", 120.0), ("1", RETRY_AFTER_MIN_S), ("86400", RETRY_AFTER_MAX_S), (None, None)],
)
def test_429_takes_its_wait_from_retry_after_clamped(retry_after, expected):
    headers = {} if retry_after is None else {"retry-after": retry_after}
    outcome = classify_fcm_response(429, headers, QUOTA_EXCEEDED, now=NOW)
    assert outcome.kind == "retry"
    assert outcome.after_s == expected


def test_503_honours_an_http_date_retry_after():
    when = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(seconds=90)
    headers = {"Retry-After": format_datetime(when, usegmt=True)}
    outcome = classify_fcm_response(503, headers, UNAVAILABLE, now=NOW)
    assert outcome.after_s == pytest.approx(90.0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("30", 30.0),
        (" 7 ", 7.0),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_retry_after_as_a_future_http_date():
    when = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(minutes=5)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == pytest.approx(300)


@pytest.mark.parametrize(("seconds", "expected"), [(0, 10), (10, 10), (11.5, 11.5), (7200, 3600)])
def test_clamping(seconds, expected):
    assert clamp_retry_after(seconds) == expected


def test_backoff_stays_within_its_growing_window():
    rng = random.Random(7)
    for attempt in range(12):
        high = min(RETRY_AFTER_MAX_S, RETRY_AFTER_MIN_S * 2 ** (attempt + 1))
        delays = [next_delay(attempt, rng) for _ in range(300)]
        assert all(RETRY_AFTER_MIN_S <= d <= high for d in delays)
        # Full jitter: the draws spread over the window, not bunched at one end.
        assert max(delays) - min(delays) > (high - RETRY_AFTER_MIN_S) / 2


def test_backoff_is_capped_and_survives_huge_attempt_numbers():
    rng = random.Random(1)
    assert all(10 <= next_delay(10_000, rng) <= 3600 for _ in range(100))
    assert next_delay(3, rng, base_s=1, cap_s=2, min_s=0) <= 2


def test_backoff_is_reproducible_with_a_seed():
    first = [next_delay(n, random.Random(3)) for n in range(5)]
    assert first == [next_delay(n, random.Random(3)) for n in range(5)]
    with pytest.raises(ValueError):
        next_delay(-1, random.Random(3))


def test_only_a_refreshable_401_or_403_asks_for_a_new_token():
    def check(status, answer):
        return wants_credential_refresh(status, classify_fcm_response(status, {}, answer, now=NOW))

    assert check(401, OAUTH_401)
    assert check(403, PERMISSION_403)
    assert not check(401, THIRD_PARTY_AUTH)
    assert not check(403, SENDER_ID_MISMATCH)
    assert not check(404, UNREGISTERED)
    assert not check(503, UNAVAILABLE)


def test_malformed_error_bodies_read_as_empty():
    for junk in (None, [], "x", {"error": "x"}, {"error": {"details": "x"}}):
        assert parse_fcm_error(junk).error_code is None
    weird = {"error": {"details": [1, {"@type": FCM, "errorCode": 5}, {"@type": FCM}]}}
    assert parse_fcm_error(weird).error_code is None


def test_error_text_is_short_and_never_holds_the_token():
    token = "dGhpcyBpcyBhIHRva2Vu:APA91b"
    text = short_text(f"Invalid value at 'message.token' {token} " + "x" * 1000, secret=token)
    assert text is not None
    assert token not in text
    assert len(text) <= 300
