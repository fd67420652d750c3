"""The Faust application object, configured from :mod:`app.config`."""

from __future__ import annotations

import faust

from app.config import settings
from app.topology import ensure_topics


class PushesApp(faust.App):
    """The Faust app, plus a topic check before any consumer starts."""

    async def on_first_start(self) -> None:
        """Create and check the topics first: Faust itself checks no partition counts."""
        await super().on_first_start()
        await ensure_topics(settings)


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
)
