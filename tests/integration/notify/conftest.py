"""The FCM sender against the local fake over real HTTP on 127.0.0.1: no Kafka here."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def kafka() -> None:
    """Overrides the integration suite's broker fixture: these tests never touch Kafka."""
