from collections.abc import Iterator

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from app import app
from app.faust_fixes.stale_events import StaleEvent
from app.faust_fixes.transport import Consumer


@pytest.fixture
def tracked() -> Iterator[tuple[Consumer, ConsumerMessage, StaleEvent]]:
    """A payment the consumer tracks as in progress, as the stream leaves it."""
    consumer = app.consumer
    assert isinstance(consumer, Consumer)
    tp = TP("payments", 0)
    message = ConsumerMessage(
        "payments", 0, 7, 0.0, 0, [], b"k", b"v", None, 1, 1, tp,
        generation_id=app.consumer_generation_id,
    )  # fmt: skip
    consumer.track_message(message)
    message.incref()
    app.flow_control.resume()
    yield consumer, message, StaleEvent(app, b"k", b"v", [], message)
    app.flow_control.resume()
    consumer.unacked.clear()  # type: ignore[attr-defined]


def test_a_record_done_in_time_is_acked(tracked):
    consumer, message, event = tracked
    event.ack()
    assert message.acked
    consumer._clean_unacked_messages()  # what each round of wait_empty does
    assert message not in consumer.unacked


def test_a_stale_record_is_neither_acked_nor_waited_for(tracked):
    consumer, message, event = tracked
    app.flow_control.suspend()  # what a revocation does first
    assert not event.ack()
    assert not message.acked  # so never committed over
    # The batch still holds it.  Faust's wait_empty waits while this set
    # holds any unacked message, so it must not be in there.
    assert message not in consumer.unacked
