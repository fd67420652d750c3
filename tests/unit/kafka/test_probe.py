"""The broker probe against what a lost broker looks like: a closed port, a silent listener.

Its successful round trip needs a broker: tests/integration/test_probe.py.
"""

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator

import pytest

from app.config import Settings
from app.kafka.probe import BrokerProbe


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def silent_listener() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word (a hung broker)."""
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


def settings(port: int, **extra: object) -> Settings:
    return Settings(bootstrap_servers=f"127.0.0.1:{port}", **extra)  # type: ignore[arg-type]


async def test_a_closed_port_is_no_answer():
    probe = BrokerProbe(settings(closed_port()), timeout=1.0)
    probe.contact.start()
    assert await probe.probe() is False
    assert probe.contact.last_answer is None


async def test_a_broker_that_accepts_and_never_answers_times_out_in_the_bound(silent_listener):
    probe = BrokerProbe(settings(silent_listener), timeout=0.5)
    started = time.monotonic()
    assert await probe.probe() is False
    assert time.monotonic() - started < 1.5
    assert probe.contact.last_answer is None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_the_outage_is_logged_once_when_it_reaches_the_threshold(caplog):
    clock = Clock()
    probe = BrokerProbe(
        settings(closed_port(), broker_unreachable_seconds=10), timeout=1.0, clock=clock
    )
    probe.contact.start()
    caplog.set_level(logging.INFO, logger="app.kafka.probe")
    for second in range(0, 20, 2):
        clock.now = second
        await probe.probe()
        if second < 10:
            assert probe.reachable and not caplog.records, second
    assert not probe.reachable
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "has not answered for 10 s" in record.getMessage()
    assert "PUSHES_BROKER_UNREACHABLE_SECONDS=10" in record.getMessage()


async def test_run_probes_every_interval_until_stopped():
    probe = BrokerProbe(settings(closed_port()), interval=0.05, timeout=0.2)
    calls = 0
    real = probe.probe

    async def counted() -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            probe.stop()
        return await real()

    probe.probe = counted  # type: ignore[method-assign]
    await asyncio.wait_for(probe.run(), 5)
    assert calls == 3
    assert probe.contact.silence() is not None  # run() started the count
