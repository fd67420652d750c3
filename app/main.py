"""The composition root: the one place that reads the settings and wires the worker.

``faust -A app worker`` asks the ``app`` package for ``app``, which imports
this module (see :mod:`app`): the settings are read from the environment
once, the Faust app is built, and the topics, tables, agents, views, metrics
and commands are declared on it.  Everything else takes what it needs as
arguments.
"""

from __future__ import annotations

from typing import Any, cast

from mode import BaseSignalT

from app import api
from app.api.context import ApiContext
from app.api.guard import RequestGuard
from app.api.middleware import middlewares
from app.application import create_app
from app.cli import commands  # noqa: F401  (defining the commands registers them)
from app.config import Settings
from app.faust_fixes.skipped_records import OffsetTracker
from app.faust_fixes.transport import Consumer
from app.notify.log import LogNotifier
from app.ops.collectors import LagCollector, TableCollector
from app.ops.metrics import REGISTRY
from app.ops.readiness import ReadinessState
from app.streams import agents
from app.streams.batches import Batches
from app.streams.context import PartitionTables
from app.streams.deadletters import DeadLetters
from app.streams.placement import Placement
from app.topics import TopicNames, Topics
from tables import pending, sent, tokens

settings = Settings.from_env()
# Reads a PEM key file now: a bad one stops the worker before it starts.
guard = RequestGuard.from_settings(settings)
app = create_app(settings, middlewares(guard))
topics = Topics(app, TopicNames.of(settings), settings.partitions)
tokens_table = tokens.declare(app, settings)
sent_table = sent.declare(app, settings)
pending_table = pending.declare(app, settings)


def _consumer() -> Consumer:
    # The app's transport (app.faust_fixes.transport) always makes this consumer.
    return cast(Consumer, app.consumer)


offsets = OffsetTracker(lambda tp: _consumer().committed_offset(tp))
join = agents.Join(
    settings=settings,
    topics=topics,
    tables=PartitionTables(tokens=tokens_table, sent=sent_table, pending=pending_table),
    notifier=LogNotifier(fields=settings.log_format == "json"),
    dead_letters=DeadLetters(settings, topics.dead_letters),
    placement=Placement(
        canonical_topics=topics.names.canonical,
        table_partitions=settings.partitions,
        skip_local_hops=settings.skip_local_hops,
        source_partitions=lambda topic: app.consumer.topic_partitions(topic) or 0,
    ),
)
agents.register(app, topics, join, Batches(settings, _consumer, offsets, sent_table.acknowledged))


def _readiness() -> ReadinessState:
    return ReadinessState(
        topics_checked=app.startup.topics_checked,
        joined_group=app.startup.joined_group,
        # TableManagerT does not declare the recovery service the manager has.
        recovery_completed=app.tables.recovery.completed.is_set(),  # type: ignore[attr-defined]
        rebalancing=bool(app.rebalancing),
        stopping=bool(app.should_stop),
    )


api.register(app, ApiContext(settings, tokens_table, topics.tokens, _readiness), guard)
REGISTRY.register(TableCollector(app, tokens_table))
REGISTRY.register(LagCollector(app))


# mode's stubs accept only sync receivers here; mode awaits async ones.
@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _on_assigned(sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
    # Even an empty assignment means the group took this worker in.
    app.startup.joined_group = True
    join.on_assigned(frozenset(app.consumer.assignment()))
    # Every partition restarts at its committed offset.
    offsets.reset()
