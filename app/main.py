"""The composition root: the one place that reads the settings and wires the worker.

``faust -A app worker`` asks the ``app`` package for ``app``, which imports
this module (see :mod:`app`): the settings are read from the environment
once, the Faust app is built, and the topics, tables, the join's engine,
views, metrics and commands are declared on it.  Everything else takes what
it needs as arguments.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from mode import BaseSignalT

from app import api
from app.api.context import ApiContext
from app.api.guard import RequestGuard
from app.api.middleware import middlewares
from app.application import create_app
from app.cli import commands  # noqa: F401  (defining the commands registers them)
from app.config import Settings
from app.domain.delivery import user_prefix
from app.domain.partitioning import canonical_partition
from app.faust_fixes.transport import Consumer
from app.kafka.membership import GroupWatch
from app.kafka.probe import BrokerProbe
from app.notify.base import Sender
from app.notify.fcm import FcmSender
from app.notify.log import LogSender
from app.ops import logfilter
from app.ops.collectors import LagCollector, TableCollector
from app.ops.health import Health
from app.ops.metrics import REGISTRY, SenderMetrics
from app.streams.engine import Engine
from app.topics import (
    PENDING_TABLE,
    RETRIES_TABLE,
    SENT_TABLE,
    TOKENS_TABLE,
    TopicNames,
    Topics,
)
from tables import pending, retries, sent, tokens
from tables.scan import scan_prefix

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


retries_table = retries.declare(app, settings)


def _sender() -> Sender:
    if settings.sender == "fcm":
        # Reads and checks the credentials file now: a bad one stops the start.
        return FcmSender(
            cast(str, settings.fcm_credentials),
            project_id=settings.fcm_project_id,
            base_url=settings.fcm_base_url,
            max_in_flight=settings.fcm_max_in_flight,
            connect_timeout_s=settings.fcm_connect_timeout_seconds,
            read_timeout_s=settings.fcm_read_timeout_seconds,
            ttl_s=settings.push_ttl_seconds,
            # A key the token endpoint refuses is no reason not to start: the
            # worker goes on consuming, /readyz says why, the notifications wait.
            verify_on_start=False,
            observer=SenderMetrics(),
        )
    return LogSender(fields=settings.log_format == "json")


engine = Engine(
    settings=settings,
    names=topics.names,
    tables={
        TOKENS_TABLE: tokens_table,
        SENT_TABLE: sent_table,
        PENDING_TABLE: pending_table,
        RETRIES_TABLE: retries_table,
    },
    sender=_sender(),
    progress=_consumer,
)
app.engine = engine
# The group member subscribes to the inputs (so that they are assigned with
# the tables' partitions) but never fetches them: the engine reads them.
for source in (topics.token_sources, topics.payment_sources):
    app.topics.add(source)
app.task(engine.run)

# Readiness follows the broker: a probe of our own, and the group member's
# heartbeats (see app.kafka.probe, app.kafka.membership).
probe = BrokerProbe(settings)
group_watch = GroupWatch()
health = Health(
    app,
    probe,
    group_watch,
    unreachable_after=float(settings.broker_unreachable_seconds),
    sender_blocked=lambda: engine.delivery.blocked,
)
app.task(probe.run)


def _retries_of(user_id: str) -> list[dict[str, Any]]:
    partition = canonical_partition(user_id, settings.partitions)
    raw = scan_prefix(retries_table, partition, user_prefix(user_id), limit=100)
    return [orjson.loads(value) for value in raw]


api.register(
    app, ApiContext(settings, tokens_table, topics.tokens, health.readiness, _retries_of), guard
)
REGISTRY.register(TableCollector(app, tokens_table))
REGISTRY.register(LagCollector(app))
REGISTRY.register(health)

#: Seconds between two looks of the log-flood filter at its groups: a summary
#: or a recovery line is written at most this late.
LOG_FILTER_TICK_SECONDS = 5.0


async def _log_filter_tick() -> None:
    # Without it a flood's summary and its end wait for the next log record.
    logfilter.tick_all()


app.timer(LOG_FILTER_TICK_SECONDS)(_log_filter_tick)


# mode's stubs accept only sync receivers here; mode awaits async ones.
@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _on_assigned(sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
    # Even an empty assignment means the group took this worker in.
    app.startup.joined_group = True
    # The join (or sync) just answered: the coordinator has this member.
    # Faust's consumer thread holds the aiokafka consumer whose heartbeats count.
    group_watch.attach(_consumer()._thread._ensure_consumer())
    group_watch.confirm()
    engine.on_assigned(app.consumer.assignment())
