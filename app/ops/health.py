"""The worker's health, read at one moment: ``/readyz`` and its four gauges.

:class:`Health` gathers what the app, the broker probe
(:mod:`app.kafka.probe`), the group watch (:mod:`app.kafka.membership`), the
consumer's commit clock (:mod:`app.faust_fixes.commit_clock`) and the join's
consumer know, into a :class:`~app.ops.readiness.ReadinessState` for
``/readyz``, and serves them to Prometheus at scrape time:

- ``pushes_ready``: 1 when ``/readyz`` answers 200;
- ``pushes_broker_reachable``: 1 while the broker answered the probe within
  ``PUSHES_BROKER_UNREACHABLE_SECONDS``;
- ``pushes_seconds_since_last_fetch``: since the broker last answered a fetch
  of the join's consumer (absent while the worker owns no input partition);
- ``pushes_seconds_since_last_commit{topic,partition}``: per input partition
  this worker owns, since its offset was last committed here, or since it was
  assigned if it was not since.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.kafka.membership import GroupWatch
from app.kafka.probe import BrokerProbe
from app.ops.readiness import ReadinessState, broker_reachable, not_ready_reason


def seconds_since_ms(then_ms: float | None, now_ms: float) -> float | None:
    """Seconds from a wall time in milliseconds to ``now_ms`` (``None`` stays ``None``)."""
    return None if then_ms is None else max(0.0, (now_ms - then_ms) / 1000)


class Health(Collector):
    """Readiness and the health gauges of one worker (see the module docstring)."""

    def __init__(
        self,
        app: Any,
        probe: BrokerProbe,
        watch: GroupWatch,
        *,
        unreachable_after: float,
        sender_blocked: Callable[[], str | None] = lambda: None,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._probe = probe
        self._watch = watch
        self._unreachable_after = unreachable_after
        self._sender_blocked = sender_blocked
        self._wall_ms = wall_ms
        self._monotonic = monotonic

    def readiness(self) -> ReadinessState:
        """What ``/readyz`` decides from, now."""
        app = self._app
        return ReadinessState(
            topics_checked=app.startup.topics_checked,
            joined_group=app.startup.joined_group,
            recovery_completed=app.tables.recovery.completed.is_set(),
            rebalancing=bool(app.rebalancing),
            stopping=bool(app.should_stop),
            sender_blocked=self._sender_blocked(),
            broker_silence=self._probe.contact.silence(),
            coordinator_silence=self._watch.silence(),
            in_group=self._watch.in_group(),
            unreachable_after=self._unreachable_after,
        )

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The four gauges, measured now."""
        ready = not_ready_reason(self.readiness()) is None
        yield GaugeMetricFamily(
            "pushes_ready", "1 when /readyz answers 200, else 0.", value=int(ready)
        )
        reachable = broker_reachable(self._probe.contact.silence(), self._unreachable_after)
        yield GaugeMetricFamily(
            "pushes_broker_reachable",
            "1 while the broker answered a metadata probe within "
            "PUSHES_BROKER_UNREACHABLE_SECONDS, else 0.",
            value=int(reachable),
        )
        fetch = GaugeMetricFamily(
            "pushes_seconds_since_last_fetch",
            "Seconds since the broker last answered a fetch of the join's consumer "
            "(absent while this worker owns no input partition).",
        )
        inputs = self._inputs()
        since = seconds_since_ms(self._last_fetch_ms(), self._wall_ms())
        if inputs and since is not None:
            fetch.add_metric([], since)
        yield fetch
        commit = GaugeMetricFamily(
            "pushes_seconds_since_last_commit",
            "Seconds since this worker last committed the partition's offset "
            "(or since it was assigned, if not since), per owned input partition.",
            labels=["topic", "partition"],
        )
        times = getattr(self._app.consumer, "commit_times", None)
        if times is not None:
            now = self._monotonic()
            for tp in inputs:
                value = times.seconds_since(tp, now)
                if value is not None:
                    commit.add_metric([tp.topic, str(tp.partition)], value)
        yield commit

    def _inputs(self) -> list[Any]:
        engine = self._app.engine
        if engine is None:
            return []
        try:
            assignment = self._app.consumer.assignment()
        except Exception:  # the consumer is not started (yet, or any more)
            return []
        return sorted(tp for tp in assignment if tp.topic in engine.topics)

    def _last_fetch_ms(self) -> float | None:
        engine = self._app.engine
        intake = getattr(engine, "intake", None)
        if intake is None:
            return None
        value: float | None = intake.last_response_ms()
        return value
