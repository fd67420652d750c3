"""A steady stream of payments, produced the way the payments system would, in the background.

Used by the fault tests (a broker outage, SIGTERM hand-overs, a rolling
restart): librdkafka (another language's client, its own partitioner),
acks=all and idempotence, and a delivery timeout long enough to ride out a
broker outage, so every payment sent reaches Kafka exactly once and each one
is expected as exactly one notification line.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Producer

from tests.integration.harness import Worker, payment

MARKER = "send notification to mobile app with token: "


def register_tokens(bootstrap: str, topic: str, tokens: dict[str, str]) -> None:
    """Produce one registration (device ``default``) per ``user -> token``, keyed by user."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for user, token in tokens.items():
        value = json.dumps({"user_id": user, "token": token}).encode()
        producer.produce(topic, key=user.encode(), value=value)
    assert producer.flush(60) == 0, "token registrations not delivered"


def expected_line(token: str, payment_id: str) -> str:
    """The text after the marker of the one notification a payment of ours gets."""
    return f"{token} and message: Payment {payment_id} of 100.00 RUB succeeded"


def notifications(workers: Sequence[Worker]) -> Counter[str]:
    """Every notification line of ``workers``, by its text after the marker."""
    return Counter(
        line.split(MARKER, 1)[1].strip()
        for worker in workers
        for line in worker.output().splitlines()
        if MARKER in line
    )


class PaymentStream:
    """Payments for ``users`` at ``rate`` per second from a thread, until :meth:`stop`."""

    def __init__(
        self, bootstrap: str, topic: str, tokens: dict[str, str], rate: float = 20.0
    ) -> None:
        self._topic = topic
        self._tokens = tokens
        self._users = sorted(tokens)
        self._interval = 1.0 / rate
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                # Rides out an outage: librdkafka retries until the broker is back.
                "message.timeout.ms": 300_000,
                "linger.ms": 5,
                # Its connection errors during an outage are not what is measured.
                "log_level": 0,
            }
        )
        self._prefix = uuid.uuid4().hex[:6]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._errors: list[Any] = []
        #: Expected notification texts (after the marker), one per payment sent.
        self.expected: set[str] = set()
        self.sent = 0

    def start(self) -> PaymentStream:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            user = self._users[self.sent % len(self._users)]
            payment_id = f"{self._prefix}-{self.sent}"
            self._producer.produce(
                self._topic,
                key=user.encode(),
                value=payment(payment_id, user),
                on_delivery=self._delivered,
            )
            self.expected.add(expected_line(self._tokens[user], payment_id))
            self.sent += 1
            self._producer.poll(0)
            next_at += self._interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _delivered(self, error: Any, message: Any) -> None:
        if error is not None:
            self._errors.append(error)

    def stop(self, timeout: float = 120.0) -> None:
        """Stop producing and wait until Kafka has every payment sent."""
        self._stop.set()
        self._thread.join(10)
        remaining = self._producer.flush(timeout)
        assert remaining == 0, f"{remaining} payments not delivered"
        assert not self._errors, self._errors[:3]


def wait_for_all(workers: Sequence[Worker], expected: set[str], timeout: float = 120.0) -> None:
    """Wait until every expected notification is in some worker's log (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected <= set(notifications(workers)):
            return
        time.sleep(0.5)


def delivery_counts(workers: Sequence[Worker], expected: set[str]) -> dict[str, Any]:
    """Lost, duplicated and unexpected notifications of the stream, exactly."""
    seen = notifications(workers)
    ours = {text: n for text, n in seen.items() if text in expected}
    return {
        "expected": len(expected),
        "logged": sum(ours.values()),
        "missing": sorted(expected - set(seen))[:5],
        "missing_count": len(expected - set(seen)),
        "duplicated": {text: n for text, n in ours.items() if n > 1},
    }
