from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.harness import Namespace, Worker, start_broker


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def kafka() -> None:
    """The real broker, started (or found running) by scripts/kafka."""
    start_broker()


@pytest.fixture(scope="module")
def namespace() -> Namespace:
    return Namespace.fresh()


@pytest.fixture(scope="module")
def worker(namespace: Namespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(namespace, tmp_path_factory.mktemp("worker")).start().wait_ready()
    yield w
    w.stop()
