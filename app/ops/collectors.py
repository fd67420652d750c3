"""Metrics measured at scrape time: table sizes and consumer lag.

Read when Prometheus scrapes (custom collectors), so they are never stale
and cost nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.ops.lag import partition_lags
from app.ops.sizes import table_key_counts, tokens_table_sizes


class TableCollector(Collector):
    """Keys per partition of every table, and users/devices of the tokens table."""

    def __init__(self, app: Any, tokens_table: Any) -> None:
        self._app = app
        self._tokens = tokens_table

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Read the local stores now."""
        keys = GaugeMetricFamily(
            "pushes_table_keys",
            "Keys in the local store of each table partition this worker owns.",
            labels=["table", "partition"],
        )
        users = GaugeMetricFamily(
            "pushes_tokens_users",
            "Users with at least one device, per owned tokens-table partition.",
            labels=["partition"],
        )
        devices = GaugeMetricFamily(
            "pushes_tokens_devices",
            "Registered devices, per owned tokens-table partition.",
            labels=["partition"],
        )
        for name, table in sorted(self._app.tables.items()):
            for partition, count in table_key_counts(self._app, table).items():
                keys.add_metric([name, str(partition)], count)
        for size in tokens_table_sizes(self._app, self._tokens):
            users.add_metric([str(size.partition)], size.users)
            devices.add_metric([str(size.partition)], size.devices)
        yield from (keys, users, devices)


class LagCollector(Collector):
    """Consumer lag of every assigned source partition."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Compare each partition's high watermark with the committed offset."""
        lag = GaugeMetricFamily(
            "pushes_consumer_lag",
            "Records not yet processed (high watermark - committed offset), per partition.",
            labels=["topic", "partition"],
        )
        try:
            lags = partition_lags(self._app)
        except Exception:
            # A scrape during startup or a rebalance must still answer: the
            # consumer may not be running yet.
            lags = {}
        for (topic, partition), value in sorted(lags.items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
