"""Fix: Faust's stream loses records around rebalances, so the join reads its inputs itself.

What Faust does wrong (faust-streaming 0.15.3), each seen losing payments in
the crash test:

- its offset commit decides from the acked offsets and lets one unprocessed
  record at the head through (``Consumer._new_offset``), and does not check
  at all while a partition has no commit;
- after a rebalance its stream skips the records it fetched under the
  previous generation, and acks them, so the next commit passes them;
- an in-flight fetch moves the read position past records it should fetch
  again after a seek, so a stream can see a hole in a partition's offsets;
- and on a revocation it forgets the acked offsets before it commits them.

Replaced: the join reads its input partitions with its own consumer
(:mod:`app.kafka.intake`), from the committed offsets, after every
rebalance, and Faust's consumer, still the group member, never fetches them:
they stay paused (also at aiokafka's level) and its livelock checks skip
them.  It commits what the join marked done (:meth:`EngineInputsFix.mark_done`),
an offset per partition whose records are all processed and whose writes
Kafka has, and it commits that before a revocation forgets it.  A partition
without a commit starts at its earliest offset.

Proved by: ``tests/integration/test_crash.py`` (nothing missing, nothing
extra, through kills, restarts, a wiped data dir and a joining worker) and
``tests/unit/faust_fixes/test_engine_inputs.py``.

Delete when: Faust's stream keeps offsets across rebalances, and the join's
timestamp order and batched writes are no longer wanted either (they are
why the join is not a Faust agent).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from aiokafka import TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.transports import TPorTopicSet


def next_commit(done: int | None, committed: int | None) -> int | None:
    """The offset to commit for a partition, or ``None`` when there is nothing new.

    ``done`` is the offset up to which the join finished the partition,
    ``committed`` the group's committed offset (the next to process).
    """
    if done is None or (committed is not None and done <= committed):
        return None
    return done


class EngineInputsFix(faust_aiokafka.Consumer):
    """Faust's consumer as group member of a join that reads its inputs itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._done: dict[TP, int] = {}

    def _engine(self) -> Any:
        # The app carries the engine (app.application.PushesApp.engine).
        return getattr(self.app, "engine", None)

    def _engine_topics(self) -> frozenset[str]:
        engine = self._engine()
        return frozenset() if engine is None else frozenset(engine.topics)

    # --- never fetch the engine's inputs ------------------------------------

    def resume_partitions(self, tps: Iterable[TP]) -> None:
        """Resume the partitions Faust reads itself (changelogs), never the engine's inputs."""
        topics = self._engine_topics()
        super().resume_partitions({tp for tp in tps if tp.topic not in topics})

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        """Pause the engine's inputs in aiokafka too, before any fetch, then assign as Faust."""
        topics = self._engine_topics()
        inputs = [TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic in topics]
        if inputs:
            self._thread._ensure_consumer().pause(*inputs)
        await super().on_partitions_assigned(assigned, generation_id)

    def verify_event_path(self, now: float, tp: TP) -> None:
        """Faust's livelock checks, for the partitions it reads itself."""
        if tp.topic not in self._engine_topics():
            super().verify_event_path(now, tp)

    # --- commit what the engine finished ------------------------------------

    def mark_done(self, tp: TP | TopicPartition, next_offset: int) -> None:
        """Everything of ``tp`` before ``next_offset`` is processed, and its writes are in Kafka."""
        key = TP(tp.topic, tp.partition)
        if next_offset > self._done.get(key, -1):
            self._done[key] = next_offset

    def committed_offset(self, tp: Any) -> int | None:
        """The offset the group resumes ``tp`` from, as far as this consumer knows."""
        return self._committed_offset[TP(tp.topic, tp.partition)]

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Let the engine finish its batch, commit it, then give the partitions up as Faust."""
        engine = self._engine()
        if engine is not None:
            await engine.drain()
        await self.commit()
        for tp in revoked:
            self._done.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, and know where uncommitted partitions start."""
        await super().perform_seek()
        unknown = [tp for tp in self.assignment() if self._committed_offset[tp] is None]
        if unknown:
            earliest = await self.earliest_offsets(*unknown)
            for tp, offset in earliest.items():
                if self._committed_offset[tp] is None:
                    self._committed_offset[tp] = offset

    def _filter_tps_with_pending_acks(self, topics: TPorTopicSet | None = None) -> Iterator[TP]:
        return (
            tp for tp in list(self._done) if topics is None or tp in topics or tp.topic in topics
        )

    def _new_offset(self, tp: TP) -> int | None:
        return next_commit(self._done.get(tp), self._committed_offset[tp])
