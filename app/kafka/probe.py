"""Is the broker answering?  A small metadata request, once a second, with its own deadline.

Readiness and ``pushes_broker_reachable`` need a signal that the broker
*answered*, and none of the worker's clients gives one it can read: the
join's consumer returns from an empty fetch after its wait whether the broker
answered or not, the producer is silent until a record expires, and the
group member's heartbeats stop during every rebalance.  So the probe asks
itself: one connection of its own (the worker's TLS and SASL settings), a
``Metadata`` request for no topic (a few bytes; the broker answers it from
memory), and a deadline of its own, so a broker that accepts the connection
and never answers counts as silent too.  Each answer is recorded in a
:class:`~app.ops.readiness.Contact`; the decisions are in
:mod:`app.ops.readiness`.

The probe logs once when the broker stops answering for the threshold and
once when it answers again, whatever aiokafka logs meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka.conn import AIOKafkaConnection, collect_hosts, create_conn
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from app.config import Settings
from app.kafka.security import kafka_client_options
from app.ops.readiness import Contact, broker_reachable

log = logging.getLogger(__name__)

#: Seconds between two probes.
DEFAULT_INTERVAL = 1.0
#: Seconds a probe waits for the connection and the answer together.
DEFAULT_TIMEOUT = 2.0


class BrokerProbe:
    """Asks the brokers for metadata every ``interval`` seconds; remembers the last answer."""

    def __init__(
        self,
        settings: Settings,
        *,
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hosts = [(host, port) for host, port, _ in collect_hosts(settings.bootstrap_servers)]
        self._options: dict[str, Any] = {
            "client_id": f"{settings.app_id}-probe",
            "request_timeout_ms": int(timeout * 1000),
            **kafka_client_options(settings),
        }
        self._interval = interval
        self._timeout = timeout
        self._unreachable_after = float(settings.broker_unreachable_seconds)
        self._clock = clock
        #: When the broker last answered a probe.
        self.contact = Contact(clock)
        self._conn: AIOKafkaConnection | None = None
        self._silent_logged = False
        self._stopped = False

    @property
    def reachable(self) -> bool:
        """Whether the broker answered within ``PUSHES_BROKER_UNREACHABLE_SECONDS``."""
        return broker_reachable(self.contact.silence(), self._unreachable_after)

    async def run(self) -> None:
        """Probe until stopped (the app runs this as a task)."""
        self.contact.start()
        try:
            while not self._stopped:
                started = self._clock()
                await self.probe()
                await asyncio.sleep(max(0.0, self._interval - (self._clock() - started)))
        finally:
            self.close()

    def stop(self) -> None:
        """End :meth:`run` after the probe in progress."""
        self._stopped = True

    async def probe(self) -> bool:
        """One round trip; ``True`` (and recorded) when a broker answered in time."""
        try:
            await asyncio.wait_for(self._ask(), self._timeout)
        except (KafkaError, OSError, asyncio.TimeoutError):
            self._drop()
            self._report()
            return False
        silence = self.contact.silence()
        self.contact.answered()
        if self._silent_logged:
            self._silent_logged = False
            log.info(
                "the Kafka broker answers again, after %.0f s without an answer",
                silence or 0.0,
            )
        return True

    def close(self) -> None:
        """Close the probe's connection."""
        self._drop()

    async def _ask(self) -> None:
        conn = self._conn
        if conn is None or not conn.connected():
            conn = self._conn = await self._connect()
        await conn.send(MetadataRequest([]))

    async def _connect(self) -> AIOKafkaConnection:
        error: BaseException | None = None
        for host, port in self._hosts:
            try:
                conn: AIOKafkaConnection = await create_conn(host, port, **self._options)
                return conn
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                error = exc
        raise error or OSError("no bootstrap server configured")

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _report(self) -> None:
        # Once per outage: aiokafka's own errors are summarised by the log filter.
        if not self._silent_logged and not self.reachable:
            self._silent_logged = True
            log.warning(
                "the Kafka broker has not answered for %.0f s (PUSHES_BROKER_UNREACHABLE_SECONDS"
                "=%g): /readyz answers 503 until it does",
                self.contact.silence() or 0.0,
                self._unreachable_after,
            )
