"""Batches of events taken straight from an agent's channel.

Faust's ``Stream.take_events`` feeds its buffer from the stream's own
iterator, which costs an event-loop turn, a processor call and several
bookkeeping calls for every record (about a quarter of the join's time in
the profile).  :func:`batches` takes what the channel already holds in one
go instead, and does per record only what the stream's iterator does for
acking: track the message as unacked, tell the monitor, and ack it after
the batch.  Records fetched before the latest rebalance (or while the flow
is paused) are left out and not acked, as the stream would leave them; see
:class:`app.application.PushesEvent`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import faust

from app.application import PushesEvent


async def batches(
    stream: faust.Stream[Any], max_records: int, within: float
) -> AsyncIterator[list[PushesEvent]]:
    """Yield lists of up to ``max_records`` events; each is acked when the next is asked for.

    A batch is whatever the channel holds once one event has arrived, and
    once more after ``within`` seconds if that was not ``max_records``.
    """
    # An agent's stream reads a channel (its topics), not another iterator.
    queue = cast(faust.ChannelT[Any], stream.channel).queue
    while not stream.should_stop:
        try:
            taken = [await queue.get()]
        except StopAsyncIteration:
            return  # Faust throws it into the channel to end the agent
        _drain(queue, taken, max_records)
        if len(taken) < max_records:
            await asyncio.sleep(within)
            _drain(queue, taken, max_records)
        events = _admit(stream, taken)
        taken.clear()
        yield events
        # Not in a `finally`: a batch whose processing raised stays unacked,
        # so its records cannot be committed over.
        _ack(stream, events)
        # No reference may outlive the batch: Faust's rebalance waits until
        # every tracked message is acked *or* garbage (a stale one is never acked).
        events.clear()


def _drain(queue: Any, into: list[Any], limit: int) -> None:
    while len(into) < limit and not queue.empty():
        into.append(queue.get_nowait())


def _admit(stream: faust.Stream[Any], taken: list[Any]) -> list[PushesEvent]:
    """The current events of ``taken``, tracked for acking as Faust's stream would."""
    app = stream.app
    track = app.consumer.unacked.add
    acking_topics = app.topics.acking_topics
    events = []
    for event in cast(list[PushesEvent], taken):
        if event.is_stale():
            continue
        message = event.message
        if message.topic in acking_topics and not message.tracked:
            message.tracked = True
            track(message)
            stream._on_message_in(message.tp, message.offset, message)
        stream._on_stream_event_in(message.tp, message.offset, stream, event)
        events.append(event)
    return events


def _ack(stream: faust.Stream[Any], events: list[PushesEvent]) -> None:
    for event in events:
        message = event.message
        stream._on_stream_event_out(message.tp, message.offset, stream, event)
        if event.ack():
            stream._on_message_out(message.tp, message.offset, message)
