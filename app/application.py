"""The Faust application object, configured from :mod:`app.config`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

import faust
from faust.tables import TableManager
from faust.types.transports import TransportT
from faust.types.web import Web

from app.config import Settings, settings
from app.logs import use_json_logs
from app.readiness import startup
from app.security import faust_credentials
from app.topology import ensure_topics
from app.transport import Consumer, Transport
from tables.restore import BulkRestoreTable


class PushesApp(faust.App):
    """The Faust app, plus a topic check before any consumer starts."""

    #: Called with the web driver before the server starts (middlewares go here).
    webserver_init_hooks: list[Callable[[Web], None]]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.webserver_init_hooks = []

    async def on_first_start(self) -> None:
        """Create and check the topics first: Faust itself checks no partition counts."""
        await super().on_first_start()
        startup.checked_topics = frozenset(await ensure_topics(settings))

    def _new_transport(self) -> TransportT:
        # Our consumer: Faust's own can commit over an unprocessed record.
        return Transport(self.conf.broker_consumer, self)

    def on_webserver_init(self, web: Web) -> None:
        """Let the HTTP modules install what must exist before the server starts."""
        super().on_webserver_init(web)
        for hook in self.webserver_init_hooks:
            hook(web)


class PushesTableManager(TableManager):
    """Faust's table manager, without the fixed 1 s sleep before it starts.

    Faust sleeps a second before it subscribes the changelogs and starts
    recovery; every table here is declared when the app module is imported,
    long before, so the sleep only delayed every start (and /readyz) by 1 s.
    """

    async def on_start(self) -> None:
        """Subscribe the changelogs and start recovery (Faust's own steps)."""
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class PushesEvent(faust.Event):
    """Faust's event, minus one way to lose records in a rebalance.

    After a rebalance Faust's stream skips the records it fetched under the
    previous consumer generation (and any record that arrives while flow
    control is paused) -- and acks them, so the next commit can jump past
    records that no worker processed.  The crash test lost 20 payments in a
    row that way.  Such a record is not acked here; it is fetched again, or
    read directly when it leaves a hole (see :mod:`app.continuity`).
    """

    def is_stale(self) -> bool:
        """Whether the record was fetched before the latest rebalance (or while paused).

        Faust's stream skips such records; a batch buffer may still hold them.
        """
        return self.message.generation_id != self.app.consumer_generation_id or not (
            self.app.flow_control.is_active()
        )

    def ack(self) -> bool:
        """Ack only records of the current generation, while the flow is on.

        A stale record is dropped instead: whoever owns its partition now
        fetches it again, so a rebalance must not wait for it either.  Acks
        come only after the record's batch is done with it.
        """
        if self.is_stale():
            # Our Transport (PushesApp._new_transport) always makes this consumer.
            cast(Consumer, self.app.consumer).abandon(self.message)
            return False
        return bool(super().ack())


class PushesWorker(faust.Worker):
    """Faust's worker, with ``faust --datadir`` and ``PUSHES_CANONICAL_URL`` made to work.

    The faust CLI imports ``-A app`` *before* it exports ``--datadir`` as
    ``F_DATADIR``, so a data dir fixed at import time would win over the flag.
    ``faust worker --web-port`` likewise overwrites ``canonical_url`` with
    ``http://<hostname>:<port>``, which is unreachable in most containers.
    The worker is created after both: apply our settings again here.
    """

    def __init__(self, app: faust.App, *services: object, **kwargs: object) -> None:
        current = Settings.from_env()
        app.conf.datadir = current.data_dir  # type: ignore[assignment]
        if current.canonical_url:
            app.conf.canonical_url = current.canonical_url  # type: ignore[assignment]
        super().__init__(app, *services, **kwargs)  # type: ignore[arg-type]

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """Switch to JSON lines when ``PUSHES_LOG_FORMAT=json``."""
        super().on_setup_root_logger(logger, level)
        # No format of ours shows thread or process names; looking them up
        # for every record costs more than a tenth of each notification line.
        logging.logThreads = False
        logging.logMultiprocessing = False
        if settings.log_format == "json":
            use_json_logs(logger)


app = PushesApp(
    settings.app_id,
    broker=settings.broker_url,
    broker_credentials=faust_credentials(settings),
    canonical_url=settings.canonical_url,
    store="rocksdb://",
    # Tables restore a new partition by copying the changelog in bulk first.
    Table=BulkRestoreTable,
    TableManager=PushesTableManager,
    datadir=settings.data_dir,
    web_port=settings.web_port,
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    # Every record is parsed by our own code (app.models), never by Faust:
    # a Faust decode error would crash the agent instead of reporting the record.
    key_serializer="raw",
    value_serializer="raw",
    # acks=all: a 202 from the API means every in-sync replica has the token.
    producer_acks=-1,
    # Every batch waits for its writes anyway: a few ms of linger turns a
    # produce request per record into one per partition and batch.
    producer_linger=settings.producer_linger_ms / 1000,
    producer_max_batch_size=256 * 1024,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=settings.session_timeout_seconds,
    broker_heartbeat_interval=settings.session_timeout_seconds / 5,
    # Faust's /table/... views would hand out every push token to anyone, and
    # /router/... the cluster layout: only the documented API is served.
    web_tables_enabled=False,
    web_router_enabled=False,
    autodiscover=False,
    Worker=PushesWorker,
    Event=PushesEvent,
)
