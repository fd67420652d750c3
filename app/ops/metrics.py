"""Every Prometheus metric of the worker, served at ``GET /metrics``.

Labels are bounded sets (outcomes, topics, reason codes, route *patterns*
such as ``/tokens/{user_id}``), never user ids, tokens or raw paths: a label
value is stored forever and shown to every scraper.  Table sizes and
consumer lag are measured at scrape time (:mod:`app.ops.collectors`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

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
