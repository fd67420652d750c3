"""Reading partitions directly, outside any consumer group (bulk restore, dead-letter read-back)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer

from app.config import Settings
from app.kafka.security import kafka_client_options


async def standalone_consumer(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A started consumer outside any group, for reading partitions directly.

    ``options`` go to :class:`aiokafka.AIOKafkaConsumer` (fetch sizes, say).
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        **kafka_client_options(settings),
        **options,
    )
    await consumer.start()
    return consumer
