"""Kafka security from the environment, against a real SASL_PLAINTEXT SCRAM listener.

A second broker (its own home, ports and data, so the shared one is never
restarted) opens a SCRAM-SHA-256/512 listener.  A worker, its topic check,
its API producer and the producer CLI all log in with the credentials from
the environment; a wrong password fails loudly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.kafka.probe import BrokerProbe
from tests.integration.harness import (
    KAFKA_SCRIPT,
    REPO,
    Namespace,
    Worker,
    free_port,
    notification,
)

pytestmark = pytest.mark.slow

USER, PASSWORD = "pushes", "pushes-secret"


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the second broker; yield the SASL listener's address; stop it."""
    home: Path = tmp_path_factory.mktemp("kafka-sasl")
    port, controller, sasl = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_HOME_DIR": str(home),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}",
        "KAFKA_CONTROLLER_PORT": str(controller),
        "KAFKA_SASL_PORT": str(sasl),
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_HEAP_OPTS": "-Xms256m -Xmx256m",
    }
    subprocess.run([str(KAFKA_SCRIPT), "start"], check=True, cwd=REPO, env=env, timeout=300)
    try:
        yield f"127.0.0.1:{sasl}"
    finally:
        subprocess.run([str(KAFKA_SCRIPT), "stop"], cwd=REPO, env=env, timeout=120)


def sasl_env(address: str, mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": address,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": mechanism,
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faust", "-A", "app", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_worker_api_and_cli_work_over_scram(
    sasl_broker: str, tmp_path_factory: pytest.TempPathFactory
):
    namespace = Namespace.fresh()
    worker = Worker(
        namespace,
        tmp_path_factory.mktemp("sasl-worker"),
        **sasl_env(sasl_broker, "SCRAM-SHA-512"),
    )
    try:
        worker.start().wait_ready(timeout=180)
        user, token = f"sasl-{uuid.uuid4().hex[:8]}", "sasl-token-" + uuid.uuid4().hex
        worker.register(user, token)  # the API's producer logs in too
        worker.wait_token(user, "default", token)

        env = {**worker.env, **sasl_env(sasl_broker, "SCRAM-SHA-256")}
        run = cli(env, "produce-payment", "--user-id", user, "--payment-id", f"p-{user}")
        assert run.returncode == 0, run.stderr
        worker.wait_for(notification(token, f"Payment p-{user} of 100.00 RUB succeeded"))
        assert PASSWORD not in worker.output()
    finally:
        worker.stop()


def test_a_wrong_password_is_refused(sasl_broker: str):
    env = {
        **os.environ,
        **Namespace.fresh().env(),
        **sasl_env(sasl_broker, "SCRAM-SHA-256", password="wrong"),
    }
    run = cli(env, "produce-token", "--user-id", "u", "--token", "t")
    assert run.returncode == 1
    assert f"error: Kafka at {sasl_broker}" in run.stderr


def test_plaintext_against_the_sasl_listener_fails(sasl_broker: str):
    env = {**os.environ, **Namespace.fresh().env(), "KAFKA_BOOTSTRAP_SERVERS": sasl_broker}
    run = cli(env, "produce-token", "--user-id", "u", "--token", "t")
    assert run.returncode == 1


async def test_the_broker_probe_logs_in_like_every_other_client(sasl_broker: str):
    for password, answered in ((PASSWORD, True), ("wrong", False)):
        settings = Settings.from_env(sasl_env(sasl_broker, "SCRAM-SHA-512", password))
        probe = BrokerProbe(settings, timeout=10.0)
        try:
            assert await probe.probe() is answered, password
        finally:
            probe.close()
