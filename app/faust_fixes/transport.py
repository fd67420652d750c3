"""The worker's Kafka transport: Faust's aiokafka driver with the consumer fixes composed."""

from __future__ import annotations

from typing import ClassVar

from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.transports import ConsumerT, ProducerT

from app.faust_fixes.commit_clock import CommitClockFix
from app.faust_fixes.engine_inputs import EngineInputsFix
from app.faust_fixes.fetch_wait import FetchWaitFix
from app.faust_fixes.topic_redeclare import Producer


class Consumer(CommitClockFix, EngineInputsFix, FetchWaitFix):
    """Faust's aiokafka consumer with every consumer fix of this package."""


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport with :class:`Consumer` and the fixed producer."""

    Consumer: ClassVar[type[ConsumerT]] = Consumer
    Producer: ClassVar[type[ProducerT]] = Producer
