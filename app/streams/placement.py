"""The hop: a record off its user's canonical partition moves there first.

A record may be processed where it was read only when its topic is
partitioned like the table and it sits on its user's partition.  Any other
record is forwarded, with its original timestamp, to its user's partition of
the canonical topic -- unless this worker owns that partition, in which case
it is processed right away on that partition's tables and the hop is saved.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from faust.types import TP, TopicT

from app.domain.partitioning import hop_target, user_key


class Placement:
    """Decides, per record, which partition's tables process it here, or forwards it."""

    def __init__(
        self,
        *,
        canonical_topics: frozenset[str],
        table_partitions: int,
        skip_local_hops: bool,
        source_partitions: Callable[[str], int],
    ) -> None:
        self._canonical = canonical_topics
        self._partitions = table_partitions
        self._skip_local = skip_local_hops
        self._source_partitions = source_partitions
        #: The partitions this worker consumes; set on every assignment.
        self.assigned: frozenset[TP] = frozenset()

    async def place(
        self, message: Any, user_id: str, target: TopicT, deliveries: list[Awaitable[Any]]
    ) -> int | None:
        """The partition whose tables process ``message`` here, or ``None`` once forwarded.

        A forwarded record's delivery is appended to ``deliveries``: the batch
        waits for it, not just the enqueue, before its source offsets are
        committed, since a record only in a send buffer would be lost.
        """
        if message.topic in self._canonical:
            return int(message.partition)
        partition = hop_target(
            user_id,
            partition=message.partition,
            source_partitions=self._source_partitions(message.topic),
            table_partitions=self._partitions,
        )
        if partition is None:
            return int(message.partition)
        if self._skip_local and TP(target.get_topic_name(), partition) in self.assigned:
            return partition
        sent = await target.send(
            key=user_key(user_id),
            value=message.value,
            partition=partition,
            timestamp=message.timestamp,
        )
        deliveries.append(sent)
        return None
