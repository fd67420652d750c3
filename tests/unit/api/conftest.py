from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.jwks_server import JwksServer, SigningKey


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# Key generation is the slow part (RSA); one set of keys serves every test.
@pytest.fixture(scope="session")
def rsa_key() -> SigningKey:
    return SigningKey.rsa("rsa-1")


@pytest.fixture(scope="session")
def rsa_key_2() -> SigningKey:
    return SigningKey.rsa("rsa-2")


@pytest.fixture(scope="session")
def ec_key() -> SigningKey:
    return SigningKey.ec("ec-1")


@pytest.fixture
async def jwks_server(rsa_key: SigningKey, ec_key: SigningKey) -> AsyncIterator[JwksServer]:
    """A JWKS endpoint on 127.0.0.1 publishing ``rsa_key`` and ``ec_key``."""
    server = await JwksServer(rsa_key, ec_key).start()
    yield server
    await server.stop()
