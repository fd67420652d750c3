"""Faust's Kafka consumer, with its offset commit made safe.

Faust 0.15.3 decides how far to commit from the offsets acked so far
(``Consumer._new_offset``).  It refuses to commit when the lowest acked offset
is more than one past the committed one -- but the committed offset already
*is* the next record to process, so a single unprocessed record at the head
(one a rebalance made the stream skip) is committed over and lost.  It also
skips the check when the committed offset is 0.  The crash test lost
payments both ways.  This consumer commits only a run of acked offsets that
starts exactly at the committed offset.

Its fetches also wait less at an idle broker (see :data:`FETCH_MAX_WAIT_MS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from faust.types.transports import ConsumerT, ProducerT
from faust.utils.functional import consecutive_numbers

from app.readiness import startup

#: How long a fetch waits at the broker for records that are not there yet.
#: Faust fixes 1,500 ms, and every other request on that connection queues
#: behind a waiting fetch: each offset lookup of a rebalance (five of them
#: between an assignment and "Worker ready") took up to 1.5 s.  Records that
#: arrive end the wait at once either way; an idle worker fetches more often.
FETCH_MAX_WAIT_MS = 100


def committable_run(acked: list[int], committed: int | None) -> list[int] | None:
    """The acked offsets that may be committed now, from sorted ``acked``.

    ``committed`` is the next offset to process (Kafka's committed offset), or
    ``None`` when the partition has no commit yet.
    """
    if not acked:
        return None
    if committed is not None and acked[0] != committed:
        return None  # the record at `committed` (and maybe more) is not done
    return list(next(consecutive_numbers(acked)))


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer fetches with a short wait."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes no way to set it; aiokafka reads it when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer whose commits never pass an unprocessed record."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and know where uncommitted partitions start.

        Faust leaves the committed offset of a partition without a commit
        unknown, and then commits any run of acked offsets.  Our check needs
        the start: the partition's earliest offset (auto_offset_reset=earliest).
        """
        await super().perform_seek()
        unknown = [tp for tp in self.assignment() if self._committed_offset[tp] is None]
        if unknown:
            earliest = await self.earliest_offsets(*unknown)
            for tp, offset in earliest.items():
                if self._committed_offset[tp] is None:
                    self._committed_offset[tp] = offset

    def committed_offset(self, tp: TP) -> int | None:
        """The next offset to process of ``tp``, as far as this consumer knows."""
        return self._committed_offset[tp]

    def abandon(self, message: Message) -> None:
        """Stop waiting for ``message``: it will not be acked, and is not in progress.

        Faust's ``wait_empty`` holds every rebalance until each tracked
        message is acked or garbage-collected.  A stale record is never acked
        (see ``PushesEvent``), and the agent's last batch keeps it referenced
        until the next batch, which cannot come while the rebalance waits:
        the crash test's rebalances stalled for minutes that way.
        """
        self._unacked_messages.discard(message)

    def mark_processed(self, tp: TP, offsets: Iterable[int]) -> None:
        """Count records processed outside the stream (see app.continuity) as acked."""
        committed = self._committed_offset[tp]
        acked, index = self._acked[tp], self._acked_index[tp]
        for offset in offsets:
            if (committed is None or offset >= committed) and offset not in index:
                index.add(offset)
                acked.append(offset)

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        if gaps:
            # Offsets Faust knows hold no record (transaction markers,
            # compaction) count as acked, as in Faust.
            max_offset = max(acked)
            filled = [
                offset
                for interval in sorted(gaps.overlap(0, max_offset), key=lambda i: i.begin)
                for offset in range(interval.begin, interval.end)
            ]
            if filled:
                acked.extend(filled)
                gaps.chop(0, max(filled[-1], max_offset + 1))
        acked.sort()
        # Drop duplicates of already committed offsets (a record processed
        # again after a seek); they must not hide the head of the run.
        committed = self._committed_offset[tp]
        if committed is not None:
            while acked and acked[0] < committed:
                self._acked_index[tp].discard(acked.pop(0))
        run = committable_run(acked, committed)
        if run is None:
            return None
        del acked[: len(run)]
        self._acked_index[tp].difference_update(run)
        return run[-1] + 1


class Producer(faust_aiokafka.Producer):
    """Faust's aiokafka producer, which does not declare again what the worker checked."""

    async def create_topic(
        self, topic: str, partitions: int, replication: int, **kwargs: Any
    ) -> None:
        """Create ``topic``, unless the startup check saw it; then only track its metadata.

        Faust declares every topic it uses again at startup: a CreateTopics
        request and a full metadata refresh each, 0.1-0.2 s apiece, about
        1.9 s per start.  The startup check (:func:`app.topology.ensure_topics`)
        already created or found them with the right partition counts.  The
        producer still needs their metadata: routing a key to its partition
        (``table_route``) reads it.  aiokafka refreshes metadata for all
        topics only while it tracks none; after the first send it refreshes
        just the tracked ones, so the topic is tracked here.
        """
        if topic in startup.checked_topics:
            await self._ensure_producer().client.add_topic(topic)
            return
        await super().create_topic(topic, partitions, replication, **kwargs)


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`Consumer` and :class:`Producer`."""

    Consumer: ClassVar[type[ConsumerT]] = Consumer
    Producer: ClassVar[type[ProducerT]] = Producer
