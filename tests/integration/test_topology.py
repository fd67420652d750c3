"""The worker refuses to run a join whose topics cannot be co-partitioned."""

from __future__ import annotations

import pytest

from tests.integration.harness import Namespace, Worker
from tests.integration.kafka_tools import create_topics


def test_a_changelog_with_another_partition_count_stops_the_worker(
    tmp_path_factory: pytest.TempPathFactory,
):
    namespace = Namespace.fresh()
    changelog = f"{namespace.app_id}-tokens-changelog"
    create_topics({changelog: 4})
    worker = Worker(namespace, tmp_path_factory.mktemp("topology")).start()
    assert worker.proc is not None
    code = worker.proc.wait(timeout=120)
    assert code != 0
    message = (
        f"topic '{changelog}' has 4 partitions but the tokens table has 8 "
        "(PUSHES_PARTITIONS); they must be equal"
    )
    assert worker.lines(message), worker.output()[-3000:]
    assert not worker.lines("Worker]: Ready")
