"""Consumer lag: records on each assigned source partition not yet processed."""

from __future__ import annotations

from typing import Any


def consumer_lag(highwater: int | None, committed: int | None) -> int | None:
    """Records not yet processed on a partition, or ``None`` if unknown.

    ``highwater`` is the offset the next produced record gets; ``committed``
    the offset the group resumes from (Kafka's convention: last processed + 1).
    """
    if highwater is None or committed is None:
        return None
    return max(0, highwater - committed)


def partition_lags(app: Any) -> dict[tuple[str, int], int]:
    """Lag of every source partition assigned to this worker's consumer.

    Changelog partitions are left out: the group commits no offsets for
    them, their progress is table recovery (see ``/readyz``).
    """
    consumer = app.consumer
    engine = app.engine
    changelogs = {t.changelog_topic.get_topic_name() for t in app.tables.values()}
    lags = {}
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            continue
        try:
            # The join reads its inputs itself: only it knows their high watermarks.
            if engine is not None and tp.topic in engine.topics:
                highwater = engine.highwater(tp)
            else:
                highwater = consumer.highwater(tp)
        except Exception:  # not fetched yet, or the consumer is restarting
            continue
        lag = consumer_lag(highwater, consumer.committed_offset(tp))
        if lag is not None:
            lags[(tp.topic, tp.partition)] = lag
    return lags
