"""The producer commands (produce-token, produce-payment, generate) on the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

from app.cli.loadgen import LoadSpec, payment_records, token_records
from app.domain.messages import render_message
from app.domain.records import parse_payment
from tests.integration.harness import REPO, Worker, free_port, notification


def faust(worker: Worker, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faust", "-A", "app", *args],
        cwd=REPO,
        env={**worker.env, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_one_token_and_one_payment_from_flags(worker: Worker):
    user, token = f"cli-{uuid.uuid4().hex[:8]}", "cli-token-" + uuid.uuid4().hex
    run = faust(worker, "produce-token", "--user-id", user, "--token", token, "--device-id", "ph")
    assert run.returncode == 0, run.stderr
    where = json.loads(run.stdout)
    assert where["topic"] == worker.env["PUSHES_TOKENS_TOPIC"] and where["offset"] >= 0
    worker.wait_token(user, "ph", token)

    run = faust(
        worker,
        "produce-payment",
        "--user-id",
        user,
        "--payment-id",
        f"cli-{user}",
        "--status",
        "failed",
        "--amount",
        "12.5",
        "--currency",
        "eur",
        "--reason",
        "card expired",
    )
    assert run.returncode == 0, run.stderr
    worker.wait_for(notification(token, f"Payment cli-{user} of 12.50 EUR failed: card expired"))


def _payments_spec(seed: int) -> LoadSpec:
    return LoadSpec(count=30, users=20, seed=seed, failed_share=0.3, unknown_share=0.2)


def _covering_seed(start: int) -> int:
    """The first seed from ``start`` whose payments include a failed one and an unknown user.

    A seed from the clock keeps each run's users new on a shared broker; about
    one seed in 750 draws no unknown user among its 30 payments.
    """
    seed = start
    while True:
        records = list(payment_records(_payments_spec(seed)))
        if any(r["status"] == "failed" for r in records) and any(
            str(r["user_id"]).startswith("unknown-") for r in records
        ):
            return seed
        seed += 1


def test_generate_tokens_then_payments_with_failures_and_unknown_users(worker: Worker):
    seed = _covering_seed(int(time.time()))
    started = time.monotonic()
    run = faust(worker, "generate", "tokens", "--count", "20", "--rate", "40", "--seed", str(seed))
    elapsed = time.monotonic() - started
    assert run.returncode == 0, run.stderr
    assert "20 records acknowledged by Kafka" in run.stdout and ", 0 errors" in run.stdout
    assert "rec/s" in run.stderr and "20/20" in run.stderr  # the progress bar
    assert elapsed > 19 / 40  # the rate was held
    registrations = list(token_records(LoadSpec(count=20, seed=seed)))
    for record in registrations[:: len(registrations) - 1]:  # the first and the last
        worker.wait_token(record["user_id"], record["device_id"], record["token"])

    args = ["--count", "30", "--users", "20", "--seed", str(seed)]
    shares = ["--failed-share", "0.3", "--unknown-share", "0.2"]
    run = faust(worker, "generate", "payments", *args, *shares)
    assert run.returncode == 0, run.stderr
    records = list(payment_records(_payments_spec(seed)))
    for record in records:
        p = parse_payment(record)
        if p.user_id.startswith("unknown-"):
            # Waiting for a late token, or given up: either way not notified.
            worker.wait_for(f"no push token for user {p.user_id}")
        else:
            worker.wait_for(f"and message: {render_message(p)}")


def test_invalid_flags_exit_2_and_kafka_errors_exit_1(worker: Worker):
    run = faust(worker, "produce-payment", "--user-id", "u", "--status", "maybe")
    assert run.returncode == 2 and "status must be one of" in run.stderr
    run = faust(worker, "produce-token", "--user-id", " ", "--token", "t")
    assert run.returncode == 2 and "user_id must not be empty" in run.stderr
    run = faust(worker, "generate", "refunds")
    assert run.returncode == 2 and "KIND must be tokens or payments" in run.stderr
    run = faust(worker, "generate", "payments", "--failed-share", "2")
    assert run.returncode == 2

    nowhere = f"127.0.0.1:{free_port()}"
    run = faust(
        worker, "produce-token", "--user-id", "u", "--token", "t", KAFKA_BOOTSTRAP_SERVERS=nowhere
    )
    assert run.returncode == 1 and f"error: Kafka at {nowhere}" in run.stderr
    run = faust(
        worker, "generate", "tokens", "-n", "1", PUSHES_TOKENS_TOPIC="no-such-" + uuid.uuid4().hex
    )
    assert run.returncode == 1 and "does not exist" in run.stderr


def test_the_fake_fcm_command_serves_fcm_and_trusts_the_key_file_it_writes(tmp_path):
    import urllib.request

    port = free_port()
    key_file = tmp_path / "sa.json"
    command = [sys.executable, "-m", "faust", "-A", "app", "fake-fcm", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--service-account", str(key_file), "--latency", "0.01"],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/script") as resp:
                    script = json.loads(resp.read())
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert script["latency_s"] == 0.01
        account = json.loads(key_file.read_text())
        assert account["token_uri"] == f"http://127.0.0.1:{port}/token"
        assert account["type"] == "service_account" and "private_key" in account
    finally:
        proc.terminate()
        proc.wait(10)
