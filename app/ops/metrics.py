"""Every Prometheus metric of the worker, served at ``GET /metrics``.

Labels are bounded sets (outcomes, topics, reason codes, route *patterns*
such as ``/tokens/{user_id}``), never user ids, tokens or raw paths: a label
value is stored forever and shown to every scraper.  Table sizes and
consumer lag are measured at scrape time (:mod:`app.ops.collectors`).
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# The *_created series double the output and tell an operator nothing here.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

notifications = Counter(
    "pushes_notifications_total",
    "Notifications handed to the notifier, by outcome (sent, failed).",
    ["outcome"],
    registry=REGISTRY,
)
payments_without_token = Counter(
    "pushes_payments_without_token_total",
    "Payments whose user had no device (after the late-token grace period, if any).",
    registry=REGISTRY,
)
duplicates_suppressed = Counter(
    "pushes_notifications_suppressed_total",
    "Notifications not sent again because they were already sent for that "
    "payment outcome and device.",
    registry=REGISTRY,
)
payments_pending = Counter(
    "pushes_payments_pending_total",
    "Payments kept pending because their user had no token yet.",
    registry=REGISTRY,
)
pending_expired = Counter(
    "pushes_pending_payments_expired_total",
    "Pending payments dropped after the late-token grace period or over the per-user bound.",
    ["cause"],
    registry=REGISTRY,
)
dead_letters = Counter(
    "pushes_dead_letters_total",
    "Records sent to the dead-letter topic, by source topic and reason code.",
    ["topic", "reason"],
    registry=REGISTRY,
)
tokens_registered = Counter(
    "pushes_tokens_registered_total",
    "Device token registrations applied to the table.",
    registry=REGISTRY,
)
tokens_removed = Counter(
    "pushes_tokens_removed_total",
    "Devices removed from the table (deleted or evicted).",
    ["cause"],
    registry=REGISTRY,
)
payments = Counter(
    "pushes_payments_total",
    "Payment outcomes joined (each once; duplicates and replays are not counted).",
    registry=REGISTRY,
)
notification_delay = Histogram(
    "pushes_notification_delay_seconds",
    "From a payment's event time to the provider accepting its notification.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
    registry=REGISTRY,
)
send_outcomes = Counter(
    "pushes_send_outcomes_total",
    "Deliveries answered by the sender, by sender, outcome and provider error code.",
    ["sender", "outcome", "error_code"],
    registry=REGISTRY,
)
send_duration = Histogram(
    "pushes_send_duration_seconds",
    "Time for one delivery to be answered by the provider (a credential refresh included).",
    ["sender"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
sends_in_flight = Gauge(
    "pushes_sends_in_flight",
    "Requests to the provider under way.",
    ["sender"],
    registry=REGISTRY,
)
credential_refreshes = Counter(
    "pushes_credential_refreshes_total",
    "Access-token refreshes of the provider's credentials, by result (ok, error).",
    ["result"],
    registry=REGISTRY,
)
retries_scheduled = Counter(
    "pushes_retries_scheduled_total",
    "Deliveries put in the retry schedule (each attempt).",
    registry=REGISTRY,
)
retries_waiting = Gauge(
    "pushes_retries_waiting",
    "Deliveries waiting in the retry schedule of the partitions this worker owns.",
    registry=REGISTRY,
)
hop_waits_given_up = Counter(
    "pushes_hop_waits_given_up_total",
    "Times the join stopped waiting for news from a worker that forwards records to it.",
    registry=REGISTRY,
)
undeliverable = Counter(
    "pushes_undeliverable_total",
    "Notifications given up, by outcome (rejected, expired), sent to the undeliverable topic.",
    ["outcome"],
    registry=REGISTRY,
)
token_pruning_halted = Gauge(
    "pushes_token_pruning_halted",
    "1 while too many sends say the token is gone and tokens are not removed.",
    registry=REGISTRY,
)
http_requests = Counter(
    "pushes_http_requests_total",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
http_latency = Histogram(
    "pushes_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern and method.",
    ["route", "method"],
    registry=REGISTRY,
)


def method_label(method: str) -> str:
    """The request method, or ``OTHER``: clients may send any word as a method."""
    upper = method.upper()
    return upper if upper in KNOWN_METHODS else "OTHER"


class SenderMetrics:
    """A sender's observer (:class:`app.notify.base.SenderObserver`) that keeps the metrics.

    Outcomes are counted by the delivery stage, for every sender alike; a
    provider reports here what only it sees: each request's duration, the
    requests in flight and its credential refreshes.
    """

    def on_outcome(self, sender: str, outcome: object, duration_s: float) -> None:
        """One request answered after ``duration_s``."""
        send_duration.labels(sender).observe(duration_s)

    def on_in_flight(self, sender: str, in_flight: int) -> None:
        """Requests under way now."""
        sends_in_flight.labels(sender).set(in_flight)

    def on_credential_refresh(self, sender: str, result: str, duration_s: float) -> None:
        """An access-token refresh ended with ``result`` (ok, error)."""
        credential_refreshes.labels(result).inc()
