import pytest

from app.api.problems import Problem
from app.api.tokens import MAX_BODY_BYTES, parse_registration_body

JSON = "application/json"


def test_valid_body_becomes_a_registration():
    event = parse_registration_body(b'{"user_id": 42, "token": "t", "device_id": "d"}', JSON)
    assert (event.user_id, event.token, event.device_id) == ("42", "t", "d")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"user_id": 1, "token": "t"}', "text/plain", 415, "must be JSON"),
        (b"{", JSON, 400, "not valid JSON"),
        (b"[]", JSON, 400, "JSON object"),
        (b'{"user_id": 1}', JSON, 400, "token is required"),
        (b'{"user_id": 1, "token": null}', JSON, 400, "use DELETE"),
        (b'{"user_id": "", "token": "t"}', JSON, 400, "user_id must not be empty"),
        (b"x" * (MAX_BODY_BYTES + 1), JSON, 413, "byte limit"),
    ],
)
def test_bad_bodies_get_a_status_and_a_reason(body, content_type, status, message):
    with pytest.raises(Problem, match=message) as caught:
        parse_registration_body(body, content_type)
    assert caught.value.status == status
