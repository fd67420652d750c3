import asyncio
import time

import pytest
from aiokafka.errors import KafkaConnectionError

from app.api.problems import Problem
from app.api.tokens import (
    KAFKA_UNAVAILABLE,
    MAX_BODY_BYTES,
    OWNER_TIMEOUT,
    KafkaUnavailable,
    kafka_unavailable_body,
    owner_timeout_body,
    parse_registration_body,
    publish_token_event,
)
from app.domain.records import parse_token_event

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


class Metadata:
    topic, partition, offset = "push-tokens", 3, 41


class Topic:
    """What the API needs of a Faust topic: ``send()`` returning a future Kafka completes."""

    def __init__(self, *, enqueue_s: float = 0.0, ack_s: float | None = 0.0, error=None):
        self.enqueue_s, self.ack_s, self.error = enqueue_s, ack_s, error
        self.futures: list[asyncio.Future] = []
        self.sent: list[tuple[bytes, bytes]] = []

    async def send(self, *, key: bytes, value: bytes) -> asyncio.Future:
        await asyncio.sleep(self.enqueue_s)  # e.g. waiting for metadata
        self.sent.append((key, value))
        future = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        if self.error is not None:
            future.set_exception(self.error)
        elif self.ack_s is not None:
            asyncio.get_running_loop().call_later(self.ack_s, _ack, future)
        return future


def _ack(future: asyncio.Future) -> None:
    # What Faust's producer does when Kafka answers: it fails on a cancelled future.
    future.set_result(Metadata())


EVENT = parse_token_event({"user_id": "42", "token": "t-1"})


async def test_an_acknowledged_event_answers_where_kafka_put_it():
    where = await publish_token_event(Topic(ack_s=0.01), EVENT, timeout=1.0)
    assert where == {"topic": "push-tokens", "partition": 3, "offset": 41}


@pytest.mark.parametrize(
    "topic",
    [Topic(ack_s=None), Topic(enqueue_s=10.0)],
    ids=["no acknowledgement", "the enqueue blocks (metadata)"],
)
async def test_no_acknowledgement_within_the_bound_is_kafka_unavailable(topic):
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match=r"within 0\.2 s"):
        await publish_token_event(topic, EVENT, timeout=0.2)
    assert time.monotonic() - started < 0.5


async def test_a_late_acknowledgement_finds_the_producers_future_intact():
    topic = Topic(ack_s=0.3)
    with pytest.raises(KafkaUnavailable):
        await publish_token_event(topic, EVENT, timeout=0.1)
    (future,) = topic.futures
    assert not future.cancelled()
    await asyncio.sleep(0.4)
    assert future.result().offset == 41  # delivered later, harmlessly


async def test_a_kafka_error_is_kafka_unavailable_naming_the_error():
    with pytest.raises(KafkaUnavailable, match="KafkaConnectionError"):
        await publish_token_event(Topic(error=KafkaConnectionError()), EVENT, timeout=1.0)


def test_the_503_body_says_kafka_is_unavailable_and_nothing_was_stored():
    registered = kafka_unavailable_body("registered")
    assert registered["code"] == KAFKA_UNAVAILABLE
    assert "Kafka is unavailable: the token was not stored" in registered["error"]
    assert "Retry-After" in registered["error"]
    assert "the removal was not stored" in kafka_unavailable_body("removed")["error"]


def test_the_504_body_names_the_bound():
    body = owner_timeout_body(5)
    assert body["code"] == OWNER_TIMEOUT and "within 5 s" in body["error"]
