"""Real processes for integration tests: the broker script and Faust workers.

Nothing here fakes Kafka: workers are ``python -m faust -A app worker``
subprocesses talking to the broker that ``scripts/kafka`` runs, and records are
produced with a plain aiokafka producer, as another team's service would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

REPO = Path(__file__).resolve().parents[2]
KAFKA_SCRIPT = REPO / "scripts" / "kafka"
READY = "Worker]: Ready"  # Faust's line once the worker has started
BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def start_broker() -> None:
    """Start the local broker through the project's own script (idempotent)."""
    subprocess.run([str(KAFKA_SCRIPT), "start"], check=True, cwd=REPO)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Namespace:
    """Topic names and app id unique to one test module, so runs never mix."""

    suffix: str

    @classmethod
    def fresh(cls) -> Namespace:
        return cls(uuid.uuid4().hex[:10])

    @property
    def app_id(self) -> str:
        return f"pushes-test-{self.suffix}"

    @property
    def tokens_topic(self) -> str:
        return f"push-tokens-{self.suffix}"

    @property
    def payments_topic(self) -> str:
        return f"payments-{self.suffix}"

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PUSHES_APP_ID": self.app_id,
            "PUSHES_TOKENS_TOPIC": self.tokens_topic,
            "PUSHES_PAYMENTS_TOPIC": self.payments_topic,
            "PUSHES_UNDELIVERABLE_TOPIC": f"{self.app_id}-undeliverable",
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            **extra,
        }


class Worker:
    """One ``faust -A app worker`` process with its own web port and data dir."""

    def __init__(self, namespace: Namespace, workdir: Path, name: str = "w1", **env: str):
        self.name = name
        self.port = free_port()
        self.datadir = workdir / f"{name}-data"
        self.log_path = workdir / f"{name}.log"
        self.env = {**os.environ, **namespace.env(**env)}
        self.proc: subprocess.Popen[bytes] | None = None
        self._ready_before = 0
        # Sent with every request (e.g. the bearer token of PUSHES_API_TOKEN).
        self.headers: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        # Ready lines before this start do not count for wait_ready().
        self._ready_before = len(self.lines(READY)) if self.log_path.exists() else 0
        # Append: a restarted worker keeps its earlier output for the counts.
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "faust",
                    "--datadir",
                    str(self.datadir),
                    "-A",
                    "app",
                    "worker",
                    "-l",
                    "info",
                    "--web-port",
                    str(self.port),
                ],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.output().splitlines() if needle in line]

    def wait_for(self, needle: str, timeout: float = 60.0, count: int = 1) -> list[str]:
        """Wait until ``needle`` is in at least ``count`` lines of the output."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.lines(needle)
            if len(found) >= count:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"worker {self.name} exited ({self.proc.returncode}) while waiting for "
                    f"{needle!r}; last output:\n{self._tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{needle!r} seen {len(found)} times, wanted {count}, within {timeout}s; "
                    f"last output of {self.name}:\n{self._tail()}"
                )
            time.sleep(0.2)

    def wait_ready(self, timeout: float = 120.0) -> Worker:
        self.wait_for(READY, timeout, count=self._ready_before + 1)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def _tail(self, n: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-n:])

    # --- HTTP -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = "application/json",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return the status and the decoded JSON body."""
        headers = {**self.headers, **(headers or {})}
        if content_type and body is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                return err.code, json.loads(raw)
            except ValueError:
                return err.code, raw.decode("utf-8", "replace")

    def register(self, user_id: Any, token: str, device_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"user_id": user_id, "token": token}
        if device_id is not None:
            body["device_id"] = device_id
        status, answer = self.request("POST", "/tokens", json.dumps(body).encode())
        assert status == 202, (status, answer)
        return dict(answer)

    def devices(self, user_id: str) -> dict[str, str] | None:
        """The device -> masked token map the table serves now, or ``None`` (404)."""
        status, answer = self.request("GET", f"/tokens/{user_id}")
        if status == 404:
            return None
        assert status == 200, (status, answer)
        return _device_map(answer)

    def wait_token(
        self, user_id: str, device_id: str, token: str | None, timeout: float = 60.0
    ) -> None:
        """Wait until the table serves ``token`` (masked) for the device, or none."""
        expected = None if token is None else masked(token)
        deadline = time.monotonic() + timeout
        answer: Any = None
        while time.monotonic() < deadline:
            # Any other answer (404, or 503 while the worker starts) means: not yet.
            status, answer = self.request("GET", f"/tokens/{user_id}")
            devices = _device_map(answer) if status == 200 else {}
            if devices.get(device_id) == expected:
                return
            time.sleep(0.2)
        raise AssertionError(f"{user_id}/{device_id} should have {expected}, table says {answer}")


def _device_map(answer: Any) -> dict[str, str]:
    return {d["device_id"]: d["token"] for d in answer["devices"]}


def masked(token: str) -> str:
    """A token as the API shows it: its first 6 and last 4 characters."""
    return token[:6] + "..." + token[-4:]


def produce(topic: str, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    """Produce ``(key, value)`` records with a plain aiokafka producer, acks=all.

    A ``None`` value is a tombstone.
    """

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v) for k, v in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def payment(payment_id: str, user_id: Any, status: str = "succeeded", **extra: Any) -> bytes:
    body = {
        "payment_id": payment_id,
        "user_id": user_id,
        "status": status,
        "amount": "100",
        "currency": "RUB",
        **extra,
    }
    return json.dumps(body).encode()


def notification(token: str, message: str) -> str:
    return f"send notification to mobile app with token: {token} and message: {message}"


def fetch(
    url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request: status, headers and body bytes, whatever the status."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()
