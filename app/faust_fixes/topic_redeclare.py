"""Fix: Faust declares every topic again at start, at about 0.1-0.2 s each.

What Faust does wrong (faust-streaming 0.15.3): the producer sends a
CreateTopics request and a full metadata refresh for every topic it uses,
about 1.9 s per start here, although the worker's startup check
(:func:`app.kafka.admin.ensure_topics`) already created or found them with the
right partition counts.

Replaced: ``Producer.create_topic``.  A topic the startup check saw is only
tracked for metadata: routing a key to its partition (``table_route``) reads
it, and aiokafka refreshes metadata for all topics only while it tracks none;
after the first send it refreshes just the tracked ones.

Proved by: ``bench`` (time from spawn to ``/readyz``) and every integration
test (routing, ``tests/integration/test_routing.py``, still finds owners).

Delete when: Faust skips declaring topics that exist with the right
configuration.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka


class Producer(faust_aiokafka.Producer):
    """Faust's aiokafka producer, which does not declare again what the worker checked."""

    async def create_topic(
        self, topic: str, partitions: int, replication: int, **kwargs: Any
    ) -> None:
        """Create ``topic``, unless the startup check saw it; then only track its metadata."""
        if topic in self.app.startup.checked_topics:  # type: ignore[attr-defined]
            await self._ensure_producer().client.add_topic(topic)
            return
        await super().create_topic(topic, partitions, replication, **kwargs)
