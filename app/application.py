"""The Faust app: settings turned into ``faust.App(...)`` arguments, the fixes plugged in."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import faust
from faust.types.auth import CredentialsT
from faust.types.transports import TransportT
from faust.types.web import Web

from app.config import Settings
from app.faust_fixes.cli_datadir import CliSettingsWorker
from app.faust_fixes.recovery_sleep import TableManagerWithoutSleep
from app.faust_fixes.transport import Transport
from app.kafka.admin import ensure_topics
from app.kafka.security import ssl_context, uses_sasl
from app.ops import logfilter
from app.ops.logs import use_json_logs
from app.ops.readiness import StartupFlags
from tables.store import BulkRestoreTable


class Engine(Protocol):
    """What the app tells the join's engine (:class:`app.streams.engine.Engine`)."""

    @property
    def topics(self) -> frozenset[str]:
        """The input topics it reads itself."""

    def highwater(self, tp: Any) -> int | None:
        """An input partition's high watermark."""

    def on_assigned(self, assigned: Iterable[Any]) -> None:
        """The group gave this worker ``assigned``."""

    def on_ready(self) -> None:
        """The assignment's tables are recovered."""

    async def drain(self) -> None:
        """Finish the batch in progress and stop taking records."""

    async def stop(self) -> None:
        """Drain and close."""


class PushesApp(faust.App):
    """The Faust app, with its settings, the join's engine, and a topic check at start."""

    def __init__(self, settings: Settings, middlewares: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(settings.app_id, **kwargs)
        #: What the app was built from; Faust services reach it through ``self.app``.
        self.settings = settings
        #: Facts of the start-up that Faust keeps no flag for (see /readyz).
        self.startup = StartupFlags()
        #: The join, which reads its inputs itself (set by the composition root).
        self.engine: Engine | None = None
        self._middlewares = list(middlewares)

    def on_rebalance_end(self) -> None:
        """The tables of the new assignment are recovered ("Worker ready"): the join resumes."""
        super().on_rebalance_end()
        if self.engine is not None:
            self.engine.on_ready()

    async def on_stop(self) -> None:
        """Let the join finish its batch before Faust commits and leaves the group."""
        if self.engine is not None:
            await self.engine.stop()
        await super().on_stop()

    async def on_first_start(self) -> None:
        """Create and check the topics first: Faust itself checks no partition counts."""
        await super().on_first_start()
        self.startup.checked_topics = frozenset(await ensure_topics(self.settings))

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)

    def on_webserver_init(self, web: Web) -> None:
        """Add the API's aiohttp middlewares, outermost first, before the server starts."""
        super().on_webserver_init(web)
        web_app: Any = web.web_app  # type: ignore[attr-defined]
        # Faust initialises its web server more than once on start: add them once.
        for middleware in self._middlewares:
            if middleware not in web_app.middlewares:
                web_app.middlewares.append(middleware)


class PushesWorker(CliSettingsWorker):
    """The worker, whose log lines are JSON when ``PUSHES_LOG_FORMAT=json``."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        """Set up Faust's root logger, then our formats and the log-flood filter."""
        super().on_setup_root_logger(logger, level)
        # No format of ours shows thread or process names; looking them up
        # for every record costs more than a tenth of each notification line.
        logging.logThreads = False
        logging.logMultiprocessing = False
        settings: Settings = self.app.settings  # type: ignore[attr-defined]
        if settings.log_format == "json":
            use_json_logs(logger)
        # A lost broker makes aiokafka log every retry: dozens of lines a second.
        logfilter.install(logger, broker=settings.bootstrap_servers)


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` for the same security, or ``None`` for plaintext."""
    context = ssl_context(settings)
    if uses_sasl(settings):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            # With a context Faust switches the protocol to SASL_SSL.
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(settings: Settings, middlewares: Sequence[Any] = ()) -> PushesApp:
    """The app for ``settings``, with the API's aiohttp ``middlewares``."""
    return PushesApp(
        settings,
        middlewares,
        broker=settings.broker_url,
        broker_credentials=faust_credentials(settings),
        canonical_url=settings.canonical_url,
        store="rocksdb://",
        # Tables restore a new partition by copying the changelog in bulk first.
        Table=BulkRestoreTable,
        TableManager=TableManagerWithoutSleep,
        datadir=settings.data_dir,
        web_port=settings.web_port,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Every record is parsed by our own code (app.domain.records), never by
        # Faust: a Faust decode error would crash the agent instead of reporting it.
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
        # A worker that leaves on SIGTERM hands its partitions over once the
        # others learn of the rebalance, which is from their next heartbeat.
        broker_heartbeat_interval=settings.session_timeout_seconds / 10,
        # Faust's /table/... views would hand out every push token to anyone, and
        # /router/... the cluster layout: only the documented API is served.
        web_tables_enabled=False,
        web_router_enabled=False,
        autodiscover=False,
        Worker=PushesWorker,
    )
