"""The outage tools themselves: a second broker that dies on SIGKILL, comes back, and is removed."""

from __future__ import annotations

import os

import pytest

from tests.integration.outage import SecondBroker, port_open

pytestmark = pytest.mark.slow


def test_the_second_broker_is_killed_restarted_and_removed(tmp_path):
    broker = SecondBroker(tmp_path / "broker")
    with broker:
        broker.start()
        first = broker.pid()
        assert first is not None and port_open(broker.port)
        assert broker.port != 9092 and broker.controller_port != 9093
        broker.kill()
        assert broker.pid() is None and not port_open(broker.port)
        broker.start()  # same ports, same data
        second = broker.pid()
        assert second not in (None, first) and port_open(broker.port)
    assert not broker.home.exists()
    assert second is not None
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
