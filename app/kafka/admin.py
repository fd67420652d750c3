"""Creates the topics the join depends on and refuses to run a broken join.

Faust creates topics lazily and never compares partition counts: a topic made
while the consumer group is forming can miss the first assignment, and a
changelog with another partition count than the table silently splits users
from their tokens.  So before any consumer starts, the worker creates what is
missing, waits until the broker reports every topic, and checks the counts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.config import Settings
from app.kafka.security import kafka_client_options
from app.topics import TABLES, TopicNames

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class TopologyError(RuntimeError):
    """The topics cannot carry a correct join; the message names them."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic the worker needs, and what its partition count must be."""

    name: str
    partitions: int
    # Sources may have any count (records hop to their canonical partition);
    # our own topics must match the table exactly.
    must_match: bool
    config: Mapping[str, str] = field(default_factory=dict)


def required_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic the join reads or writes."""
    n = settings.partitions
    names = TopicNames.of(settings)
    return [
        TopicSpec(names.tokens, n, must_match=False),
        TopicSpec(names.payments, n, must_match=False),
        TopicSpec(names.tokens_canonical, n, must_match=True),
        TopicSpec(names.payments_canonical, n, must_match=True),
        *(
            TopicSpec(
                names.changelog(table), n, must_match=True, config={"cleanup.policy": "compact"}
            )
            for table in TABLES
        ),
        TopicSpec(names.dead_letters, n, must_match=False),
        TopicSpec(names.undeliverable, n, must_match=False),
    ]


def partition_problems(specs: list[TopicSpec], actual: Mapping[str, int]) -> list[str]:
    """Human sentences for every topic whose partition count breaks the join."""
    problems = []
    for spec in specs:
        count = actual.get(spec.name)
        if count is None:
            problems.append(f"topic {spec.name!r} does not exist")
        elif spec.must_match and count != spec.partitions:
            problems.append(
                f"topic {spec.name!r} has {count} partitions but the tokens table has "
                f"{spec.partitions} (PUSHES_PARTITIONS); they must be equal"
            )
    return problems


async def ensure_topics(settings: Settings, *, timeout: float = 60.0) -> dict[str, int]:
    """Create missing topics, wait until all are visible, check their counts.

    Returns the partition count of every required topic.  Raises
    :class:`TopologyError` if the counts cannot give a correct join.
    """
    specs = required_topics(settings)
    admin = await _admin(settings)
    try:
        actual = await _partition_counts(admin, [s.name for s in specs])
        missing = [s for s in specs if s.name not in actual]
        if missing:
            await _create(admin, missing, settings.replication_factor)
            actual = await _wait_visible(admin, [s.name for s in specs], timeout)
    finally:
        await admin.close()
    problems = partition_problems(specs, actual)
    if problems:
        raise TopologyError("the join cannot run: " + "; ".join(problems))
    log.info(
        "topics checked: %s",
        ", ".join(f"{name}={count}" for name, count in sorted(actual.items())),
    )
    return actual


async def partition_counts(settings: Settings, names: list[str]) -> dict[str, int]:
    """The partition count of each of ``names`` that exists."""
    admin = await _admin(settings)
    try:
        return await _partition_counts(admin, names)
    finally:
        await admin.close()


async def _admin(settings: Settings) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, **kafka_client_options(settings)
    )
    await admin.start()
    return admin


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    counts = {}
    for topic in await admin.describe_topics(names):
        if topic["error_code"] == 0 and topic["partitions"]:
            counts[topic["topic"]] = len(topic["partitions"])
    return counts


async def _create(admin: AIOKafkaAdminClient, specs: list[TopicSpec], replication: int) -> None:
    response = await admin.create_topics(
        [NewTopic(s.name, s.partitions, replication, topic_configs=dict(s.config)) for s in specs]
    )
    for name, code, *rest in response.topic_errors:
        # Another worker may have created it a moment ago: that is fine.
        if code not in (0, TOPIC_ALREADY_EXISTS):
            message = rest[0] if rest else ""
            raise TopologyError(f"could not create topic {name!r}: error {code} {message}")
        if code == 0:
            log.info("created topic %s", name)


async def _wait_visible(
    admin: AIOKafkaAdminClient, names: list[str], timeout: float
) -> dict[str, int]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        counts = await _partition_counts(admin, names)
        if len(counts) == len(names) or loop.time() > deadline:
            return counts
        await asyncio.sleep(0.2)
