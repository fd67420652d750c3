"""Fix: every request of a rebalance queues behind a 1.5 s fetch.

What Faust does wrong (faust-streaming 0.15.3): its aiokafka consumer
fetches with a fixed ``fetch_max_wait_ms`` of 1,500 ms, and every other
request on that connection queues behind a waiting fetch: each offset
lookup of a rebalance (five of them between an assignment and "Worker
ready") took up to 1.5 s.  Records that arrive end the wait at once either
way; an idle worker just fetches more often.

Replaced: the consumer thread's ``_create_worker_consumer``, which now sets
the wait to :data:`FETCH_MAX_WAIT_MS`.

Proved by: ``bench`` (time from spawn to ``/readyz``, see bench/README.md).

Delete when: Faust passes ``fetch_max_wait_ms`` through from its settings.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka

#: How long a fetch waits at the broker for records that are not there yet.
FETCH_MAX_WAIT_MS = 100


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer fetches with a short wait."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes no way to set it; aiokafka reads it when it starts.
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS
        return consumer


class FetchWaitFix(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer on a :class:`ConsumerThread`."""

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)
