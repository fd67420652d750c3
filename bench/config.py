"""What one benchmark run does: sizes, rates and durations (pure).

The full run is the issue's workload (1,000,000 tokens over 200,000 users,
1,000,000 payments, 60 s of latency inside a 5-minute soak at 2,000
payments/s, 20 s of HTTP load; delivery: 50,000 users with 1-3 devices,
100,000 payments waiting, then 60 s at 1,000 payments/s to the fake FCM).
``--scale`` shrinks the counts and the durations together for quick runs;
single flags override any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bench.workload import Mix

#: The phases, in the order a run does them.
SECTIONS = (
    "ingest", "recovery", "baseline", "join", "latency", "soak", "http", "delivery", "backlog",
    "quix",
)  # fmt: skip
#: The phases that share the tokens loaded by ingest (the rest have their own topics).
INGEST_SECTIONS = SECTIONS[:7]
#: Keep the worker from evicting devices: it keeps at most this many per user.
MAX_DEVICES_PER_USER = 10

FULL_TOKENS = 1_000_000
FULL_USERS = 200_000
FULL_PAYMENTS = 1_000_000
FULL_LATENCY_S = 60.0
FULL_SOAK_S = 300.0
FULL_HTTP_S = 20.0
#: At the 20,000 payments/s target the full join takes 50 s; a much slower
#: worker is measured for this long, so the run still ends in bounded time.
FULL_JOIN_BUDGET_S = 300.0
#: The backlog applies the tokens and joins the payments in one go, by our
#: worker and by Quix, each cut off after this long.
FULL_BACKLOG_BUDGET_S = 900.0
#: The worker's default late-token grace (PUSHES_LATE_TOKEN_GRACE_SECONDS).
DEFAULT_GRACE_S = 600
#: The delivery scenario (its own topics and worker, sending to the fake FCM):
#: users with 1-3 devices, a backlog of payments, then a paced stream.
FULL_DELIVERY_USERS = 50_000
FULL_DELIVERY_PAYMENTS = 100_000
FULL_DELIVERY_S = 60.0
#: Each wait for the fake to have every notification (retries included) is cut off after
#: this.  The worker's backoff after a 503 without Retry-After is 10-20 s, then 10-40 s,
#: 10-80 s: three failures in a row of one notification can take 140 s.
FULL_DELIVERY_BUDGET_S = 300.0
MIN_DELIVERY_BUDGET_S = 180.0


@dataclass(frozen=True)
class BenchConfig:
    """Every knob of a run; the defaults are the full run."""

    tokens: int = FULL_TOKENS
    users: int = FULL_USERS
    payments: int = FULL_PAYMENTS
    mix: Mix = field(default_factory=Mix)
    #: Payments/s of the paced stream of the latency window and the soak.
    rate: float = 2_000.0
    latency_seconds: float = FULL_LATENCY_S
    #: The soak includes the latency window: one paced stream of this length.
    soak_seconds: float = FULL_SOAK_S
    http_seconds: float = FULL_HTTP_S
    #: The join is cut off after this long; the rate is then estimated from its lines.
    join_budget_seconds: float = FULL_JOIN_BUDGET_S
    http_connections: int = 64
    #: Each backlog contestant is cut off after this long.
    backlog_budget_seconds: float = FULL_BACKLOG_BUDGET_S
    #: The worker's late-token grace in the backlog (the join runs with 0).
    backlog_grace_seconds: int = DEFAULT_GRACE_S
    #: Shares of the backlog's devices removed, and given a new token, before the payments.
    backlog_removed: float = 0.05
    backlog_refreshed: float = 0.05
    #: The interpreter of the Quix contestant's virtualenv (None: .venv-quix's).
    quix_python: str | None = None
    #: Delivery: users (1-3 devices each), backlog payments, paced stream rate and length.
    delivery_users: int = FULL_DELIVERY_USERS
    delivery_payments: int = FULL_DELIVERY_PAYMENTS
    delivery_rate: float = 1_000.0
    delivery_seconds: float = FULL_DELIVERY_S
    delivery_budget_seconds: float = FULL_DELIVERY_BUDGET_S
    #: The fake FCM's script: latency per request, shares of 429 and 503 (Retry-After 1).
    fcm_latency_s: float = 0.05
    fcm_share_429: float = 0.01
    fcm_share_503: float = 0.01
    #: Extra settings of the delivery worker (``NAME=VALUE``), for experiments.
    delivery_env: tuple[tuple[str, str], ...] = ()
    #: The log-sender join's payments/s to compare with (None: not compared).
    join_reference: float | None = None
    partitions: int = 8
    seed: int = 1
    scale: float = 1.0
    skip: frozenset[str] = frozenset()
    #: Run the worker under py-spy during the join and save the profile.
    profile: bool = False
    #: Keep the temporary directory (worker logs, data dirs) after the run.
    keep: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.users <= self.tokens:
            raise ValueError("need 0 < users <= tokens: every known user has a device")
        if -(-self.tokens // self.users) > MAX_DEVICES_PER_USER:
            raise ValueError(f"at most {MAX_DEVICES_PER_USER} devices per user (tokens/users)")
        if self.payments < 1 or self.rate <= 0 or self.http_connections < 1:
            raise ValueError("payments, rate and http connections must be positive")
        if self.soak_seconds < self.latency_seconds:
            raise ValueError("the soak includes the latency window: soak >= latency seconds")
        unknown = self.skip - set(SECTIONS)
        if unknown:
            raise ValueError(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
        if "ingest" in self.skip and self.runs_ingest_phases:
            raise ValueError("ingest cannot be skipped: the phases after it need the filled table")
        if not 0 <= self.backlog_removed + self.backlog_refreshed <= 1:
            raise ValueError("backlog removed + refreshed must be a share between 0 and 1")
        if self.backlog_grace_seconds < 0:
            raise ValueError("the backlog's late-token grace must be >= 0")
        if min(self.delivery_users, self.delivery_payments) < 1:
            raise ValueError("delivery users and payments must be positive")
        if min(self.delivery_rate, self.delivery_seconds, self.delivery_budget_seconds) <= 0:
            raise ValueError("delivery rate, seconds and budget must be positive")
        shares = (self.fcm_share_429, self.fcm_share_503)
        if self.fcm_latency_s < 0 or min(shares) < 0 or sum(shares) > 1:
            raise ValueError("the fake FCM's latency must be >= 0 and its shares within 0..1")
        if self.join_reference is not None and self.join_reference <= 0:
            raise ValueError("the join reference must be a positive payments/s")

    def runs(self, section: str) -> bool:
        """Whether ``section`` is part of this run."""
        return section not in self.skip

    @property
    def runs_ingest_phases(self) -> bool:
        """Whether any phase after ingest needs its tokens (else ingest is left out too)."""
        return any(self.runs(s) for s in INGEST_SECTIONS[1:])

    @property
    def runs_backlog_phases(self) -> bool:
        """Whether the backlog's topics are needed (our worker's backlog, or Quix)."""
        return self.runs("backlog") or self.runs("quix")

    @property
    def paced_payments(self) -> int:
        """Payments of the paced stream (latency window + rest of the soak)."""
        if not (self.runs("latency") or self.runs("soak")):
            return 0
        return round(self.rate * self.paced_seconds)

    @property
    def paced_seconds(self) -> float:
        """Length of the paced stream: the soak, or the latency window alone."""
        return self.soak_seconds if self.runs("soak") else self.latency_seconds

    def describe(self) -> dict[str, Any]:
        """The settings, for the report."""
        return {
            "scale": self.scale,
            "tokens": self.tokens,
            "users": self.users,
            "payments": self.payments,
            "mix": {
                "failed": self.mix.failed,
                "unknown_users": self.mix.unknown,
                "duplicates": self.mix.duplicates,
                "keyed_by_payment_id": self.mix.keyed_by_payment,
            },
            "rate": self.rate,
            "latency_seconds": self.latency_seconds,
            "soak_seconds": self.soak_seconds,
            "http_seconds": self.http_seconds,
            "http_connections": self.http_connections,
            "join_budget_seconds": self.join_budget_seconds,
            "backlog_budget_seconds": self.backlog_budget_seconds,
            "backlog_grace_seconds": self.backlog_grace_seconds,
            "backlog_removed": self.backlog_removed,
            "backlog_refreshed": self.backlog_refreshed,
            "delivery_users": self.delivery_users,
            "delivery_payments": self.delivery_payments,
            "delivery_rate": self.delivery_rate,
            "delivery_seconds": self.delivery_seconds,
            "delivery_budget_seconds": self.delivery_budget_seconds,
            "fcm_latency_s": self.fcm_latency_s,
            "fcm_share_429": self.fcm_share_429,
            "fcm_share_503": self.fcm_share_503,
            "delivery_env": dict(self.delivery_env),
            "join_reference": self.join_reference,
            "partitions": self.partitions,
            "seed": self.seed,
            "skipped": sorted(self.skip),
            "profile": self.profile,
        }


def scaled(scale: float, **overrides: Any) -> BenchConfig:
    """The full run shrunk by ``scale`` (counts and durations), then ``overrides``.

    Durations keep a floor (5 s of latency, 3 s of HTTP) so a quick run still
    measures something.  ``None`` overrides are ignored (unset flags).
    """
    if scale <= 0:
        raise ValueError("scale must be > 0")
    latency = max(5.0, FULL_LATENCY_S * scale)
    base = BenchConfig(
        tokens=max(1, round(FULL_TOKENS * scale)),
        users=max(1, round(FULL_USERS * scale)),
        payments=max(1, round(FULL_PAYMENTS * scale)),
        latency_seconds=latency,
        soak_seconds=max(latency, FULL_SOAK_S * scale),
        http_seconds=max(3.0, FULL_HTTP_S * scale),
        join_budget_seconds=max(60.0, FULL_JOIN_BUDGET_S * scale),
        backlog_budget_seconds=max(120.0, FULL_BACKLOG_BUDGET_S * scale),
        delivery_users=max(1, round(FULL_DELIVERY_USERS * scale)),
        delivery_payments=max(1, round(FULL_DELIVERY_PAYMENTS * scale)),
        delivery_seconds=max(5.0, FULL_DELIVERY_S * scale),
        delivery_budget_seconds=max(MIN_DELIVERY_BUDGET_S, FULL_DELIVERY_BUDGET_S * scale),
        scale=scale,
    )
    given = {name: value for name, value in overrides.items() if value is not None}
    if "latency_seconds" in given and "soak_seconds" not in given:
        given["soak_seconds"] = max(base.soak_seconds, given["latency_seconds"])
    return replace(base, **given)
