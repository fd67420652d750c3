"""Records for demos, smoke tests and load, and the pacing and progress of sending them.

Pure: the same seed gives the same records, so a load run can be repeated
and its notifications counted.  :mod:`app.cli.commands` does the Kafka part.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FAILURE_REASONS = ("insufficient funds", "card expired", "declined by bank", "limit exceeded")
CURRENCIES = ("RUB", "EUR", "USD")


@dataclass(frozen=True)
class LoadSpec:
    """What ``faust -A app generate`` was asked for."""

    count: int
    seed: int = 0
    users: int = 0  # size of the known-user pool; 0 means ``count``
    failed_share: float = 0.0
    unknown_share: float = 0.0

    def __post_init__(self) -> None:
        if self.count < 0 or self.users < 0:
            raise ValueError("count and users must be >= 0")
        for name in ("failed_share", "unknown_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @property
    def pool(self) -> int:
        """How many known users the records spread over."""
        return self.users or max(self.count, 1)


def known_user(index: int) -> str:
    """The id of the ``index``-th generated user."""
    return f"load-{index}"


def token_records(spec: LoadSpec) -> Iterator[dict[str, Any]]:
    """Registrations: one device per known user, round robin over the pool."""
    rng = random.Random(spec.seed)
    for i in range(spec.count):
        user = known_user(i % spec.pool)
        yield {
            "user_id": user,
            "device_id": f"device-{i // spec.pool}",
            "token": f"load-token-{rng.getrandbits(128):032x}",
            "platform": rng.choice(("android", "ios")),
        }


def payment_records(spec: LoadSpec) -> Iterator[dict[str, Any]]:
    """Payments by known users, except ``unknown_share`` by users nobody registered."""
    rng = random.Random(spec.seed)
    for i in range(spec.count):
        if rng.random() < spec.unknown_share:
            user = f"unknown-{spec.seed}-{i}"
        else:
            user = known_user(rng.randrange(spec.pool))
        record: dict[str, Any] = {
            "payment_id": f"load-{spec.seed}-{i}",
            "user_id": user,
            "status": "succeeded",
            "amount": f"{rng.randrange(100, 1_000_000) / 100:.2f}",
            "currency": rng.choice(CURRENCIES),
        }
        if rng.random() < spec.failed_share:
            record["status"] = "failed"
            record["reason"] = rng.choice(FAILURE_REASONS)
        yield record


def pacing_delay(sent: int, elapsed: float, rate: float) -> float:
    """Seconds to wait before the next record to keep ``rate`` records/s (0: no limit).

    Paced against the start, not the previous record, so short stalls are
    caught up instead of lowering the average rate.
    """
    if rate <= 0:
        return 0.0
    return max(0.0, sent / rate - elapsed)


def progress_line(done: int, total: int, elapsed: float, errors: int = 0, width: int = 30) -> str:
    """``[#####.....]  500/1000  50%  248.3 rec/s  errors 0``."""
    fraction = done / total if total else 1.0
    filled = int(width * fraction)
    rate = done / elapsed if elapsed > 0 else 0.0
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {done:>{len(str(total))}}/{total} "
        f"{fraction:4.0%}  {rate:8.1f} rec/s  errors {errors}"
    )


def summary_line(topic: str, acked: int, errors: int, elapsed: float) -> str:
    """The last line of a run."""
    rate = acked / elapsed if elapsed > 0 else 0.0
    return (
        f"{acked} records acknowledged by Kafka on {topic} in {elapsed:.2f}s "
        f"({rate:.1f} rec/s), {errors} errors"
    )
