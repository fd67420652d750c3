from collections.abc import Iterator

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from app.application import PushesEvent, app
from app.transport import Consumer, committable_run


def test_a_run_starting_at_the_committed_offset_is_committed():
    assert committable_run([5, 6, 7, 9], 5) == [5, 6, 7]


def test_a_single_missing_record_at_the_head_blocks_the_commit():
    # Faust 0.15.3 commits [6, 7] here, losing record 5.
    assert committable_run([6, 7], 5) is None


def test_offset_zero_is_checked_too():
    assert committable_run([1, 2], 0) is None
    assert committable_run([0, 1], 0) == [0, 1]


def test_without_a_commit_the_first_run_is_committed():
    assert committable_run([3, 4, 6], None) == [3, 4]


def test_nothing_acked_nothing_to_commit():
    assert committable_run([], 5) is None


@pytest.fixture
def tracked() -> Iterator[tuple[Consumer, ConsumerMessage, PushesEvent]]:
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
    yield consumer, message, PushesEvent(app, b"k", b"v", [], message)
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
