import base64
import json
from datetime import datetime, timezone

from app.domain.deadletter import SourceRecord, envelope, highest_offsets, letter_key
from app.domain.records import InvalidRecord

SOURCE = SourceRecord("payments", 3, 41, 1767225600000, b"k\xff", b"\xff\x00 bad")


def test_envelope_keeps_the_original_bytes_and_where_they_came_from():
    body = envelope(
        SOURCE,
        InvalidRecord("value is not valid UTF-8", "not_utf8"),
        datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    assert base64.b64decode(body["key_base64"]) == b"k\xff"
    assert base64.b64decode(body["value_base64"]) == b"\xff\x00 bad"
    assert body["source"] == {
        "topic": "payments",
        "partition": 3,
        "offset": 41,
        "timestamp_ms": 1767225600000,
    }
    assert body["reason"] == "value is not valid UTF-8"
    assert body["reason_code"] == "not_utf8"
    assert body["dead_lettered_at"] == "2026-01-01T00:00:00.000+00:00"


def test_null_key_and_value_stay_null():
    body = envelope(
        SourceRecord("t", 0, 0, None, None, None), InvalidRecord("x"), datetime.now(timezone.utc)
    )
    assert body["key_base64"] is None and body["value_base64"] is None


def test_letters_of_one_source_partition_share_a_key():
    assert letter_key(SOURCE) == b"payments/3"


def test_read_back_finds_the_highest_offset_per_source_partition():
    def letter(topic, partition, offset):
        return json.dumps({"source": {"topic": topic, "partition": partition, "offset": offset}})

    letters = [
        letter("payments", 3, 41),
        letter("payments", 3, 7),
        letter("push-tokens", 3, 2),
        b"not ours",
        json.dumps({"source": None}),
    ]
    assert highest_offsets(letters) == {("payments", 3): 41, ("push-tokens", 3): 2}
