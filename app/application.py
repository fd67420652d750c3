"""The Faust application object, configured from :mod:`app.config`."""

from __future__ import annotations

import faust

from app.config import Settings, settings
from app.topology import ensure_topics


class PushesApp(faust.App):
    """The Faust app, plus a topic check before any consumer starts."""

    async def on_first_start(self) -> None:
        """Create and check the topics first: Faust itself checks no partition counts."""
        await super().on_first_start()
        await ensure_topics(settings)


class PushesWorker(faust.Worker):
    """Faust's worker, with ``faust --datadir`` made to work.

    The faust CLI imports ``-A app`` *before* it exports ``--datadir`` as
    ``F_DATADIR``, so a data dir fixed at import time would win over the flag.
    The worker is created after that export: read the setting again here.
    """

    def __init__(self, app: faust.App, *services: object, **kwargs: object) -> None:
        app.conf.datadir = Settings.from_env().data_dir  # type: ignore[assignment]
        super().__init__(app, *services, **kwargs)  # type: ignore[arg-type]


app = PushesApp(
    settings.app_id,
    broker=settings.broker_url,
    store="rocksdb://",
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
    consumer_auto_offset_reset="earliest",
    # Faust's /table/... views would hand out every push token to anyone.
    web_tables_enabled=False,
    autodiscover=False,
    Worker=PushesWorker,
)
