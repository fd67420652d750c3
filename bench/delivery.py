"""The delivery scenario's workload and its arithmetic (pure).

The worker sends through the local fake FCM (``PUSHES_SENDER=fcm``); what
the fake accepted is what phones would get.  A notification is a
``(token, payment id)`` pair: every original payment of a user with devices
must be accepted once per device, and a re-sent payment not again.

Users have 1 to 3 devices (seeded).  The payments are the join's mix (20%
failed, 5% re-sent duplicates, half keyed by payment id) without unknown
users, so every original payment is a push.

The fake records each ``messages:send`` request as an attempt, with the
wall-clock time it arrived (``at``, before its scripted latency), and each
accepted one again under ``/_fake/accepted`` with the same ``at``.  From
those records, here: the exact check of the pairs, the first pass (every
pair tried once) and the latency of the pairs accepted at their first try.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from bench.stats import percentile, rate
from bench.workload import (
    Mix,
    PaymentRecord,
    fake_fcm_token,
    known_user,
    payment_index,
    payment_records,
)

#: ``(token, payment id)``: one notification to one device.
Pair = tuple[str, str]

#: The join's mix without unknown users: every original payment is a push.
DELIVERY_MIX = Mix(failed=0.20, unknown=0.0, duplicates=0.05, keyed_by_payment=0.5)
#: Devices per user are drawn from 1..MAX_DEVICES.
MAX_DEVICES = 3
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


def user_tokens(users: int, seed: int) -> list[list[str]]:
    """Each user's device tokens (user index -> tokens): 1 to 3 each, seeded."""
    rng = random.Random(seed)
    return [[fake_fcm_token(rng) for _ in range(rng.randint(1, MAX_DEVICES))] for _ in range(users)]


def registrations(tokens_by_user: Sequence[Sequence[str]]) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` token registrations of every device, keyed by user id."""
    count = 0
    for index, tokens in enumerate(tokens_by_user):
        user = known_user(index)
        for device, token in enumerate(tokens):
            value = {
                "user_id": user,
                "device_id": f"device-{device}",
                "token": token,
                "platform": "ios" if (index + device) % 5 < 2 else "android",
                "updated_at": (_EPOCH + timedelta(milliseconds=count)).isoformat(
                    timespec="milliseconds"
                ),
            }
            count += 1
            yield str(user).encode(), json.dumps(value, separators=(",", ":")).encode()


def delivery_payments(
    count: int, tokens_by_user: Sequence[Sequence[str]], *, seed: int, tag: str
) -> Iterator[PaymentRecord]:
    """``count`` payments (ids ``bp-<tag>-<n>``) of the users of ``tokens_by_user``.

    ``devices`` of each record is its user's device count.
    """
    users = len(tokens_by_user)
    for record in payment_records(
        count, tokens=users, users=users, seed=seed, mix=DELIVERY_MIX, tag=tag
    ):
        yield replace(record, devices=len(tokens_by_user[_user_index(record)]))


def pairs_of(record: PaymentRecord, tokens_by_user: Sequence[Sequence[str]]) -> list[Pair]:
    """The notifications ``record`` must give: one per device; none for a re-sent payment."""
    if record.duplicate:
        return []
    return [(token, record.payment_id) for token in tokens_by_user[_user_index(record)]]


def _user_index(record: PaymentRecord) -> int:
    return int(json.loads(record.value)["user_id"]) - 1


def sequential_rate(latency_s: float) -> float | None:
    """Notifications/s of a sender that waits for each answer before the next request."""
    return 1 / latency_s if latency_s > 0 else None


# --- the fake's records ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """One ``messages:send`` request as the fake recorded it."""

    at: float  # wall-clock seconds it reached the fake
    token: str
    payment_id: str
    status: int  # 200: accepted; 0: no answer (dropped or hung)


def accepted_records(body: Mapping[str, Any]) -> list[Sent]:
    """The records of ``GET /_fake/accepted``."""
    return [
        Sent(float(a["at"]), a["message"]["token"], a["message"]["data"]["payment_id"], 200)
        for a in body["accepted"]
    ]


def attempt_records(body: Mapping[str, Any]) -> list[Sent]:
    """The records of ``GET /_fake/attempts`` that carry a message (every send of ours does)."""
    return [
        Sent(float(a["at"]), a["message"]["token"], a["message"]["data"]["payment_id"], a["status"])
        for a in body["attempts"]
        if isinstance(a.get("message"), dict) and isinstance(a["message"].get("data"), dict)
    ]


def split_by_payment(records: Iterable[Sent], prefix: str) -> tuple[list[Sent], int]:
    """The records of payments whose id starts with ``prefix``, and how many others there were.

    A retry of an earlier phase may land while a later one is measured.
    """
    mine: list[Sent] = []
    others = 0
    for s in records:
        if s.payment_id.startswith(prefix):
            mine.append(s)
        else:
            others += 1
    return mine, others


@dataclass(frozen=True)
class PairCheck:
    """The fake's accepted pairs against the expected ones."""

    expected: int
    accepted: int  # accepted records, duplicates included
    missing: int  # expected, never accepted
    duplicates: int  # accepted again after the first time
    extra: int  # accepted, not expected

    @property
    def exact(self) -> bool:
        """Every expected pair accepted exactly once, nothing else."""
        return self.missing == self.duplicates == self.extra == 0

    def as_dict(self) -> dict[str, Any]:
        """For the report."""
        return {
            "expected_pairs": self.expected,
            "accepted_records": self.accepted,
            "missing_pairs": self.missing,
            "duplicate_accepts": self.duplicates,
            "extra_accepts": self.extra,
            "exact": self.exact,
        }


def check_pairs(expected: Collection[Pair], accepted: Iterable[Sent]) -> PairCheck:
    """Compare what the fake accepted with ``expected`` (each pair once)."""
    seen = Counter((s.token, s.payment_id) for s in accepted)
    return PairCheck(
        expected=len(expected),
        accepted=sum(seen.values()),
        missing=sum(1 for pair in expected if pair not in seen),
        duplicates=sum(n - 1 for pair, n in seen.items() if pair in expected),
        extra=sum(n for pair, n in seen.items() if pair not in expected),
    )


def first_accepts(accepted: Iterable[Sent]) -> dict[Pair, float]:
    """When each pair was first accepted (the fake's ``at``)."""
    first: dict[Pair, float] = {}
    for s in accepted:
        pair = (s.token, s.payment_id)
        if pair not in first or s.at < first[pair]:
            first[pair] = s.at
    return first


@dataclass(frozen=True, slots=True)
class FirstTry:
    """A pair's first attempt: when it reached the fake, and whether it was accepted."""

    at: float
    ok: bool
    #: Seconds from the first attempt to the second (None: there was no second).
    retry_gap_s: float | None


def first_tries(attempts: Iterable[Sent]) -> dict[Pair, FirstTry]:
    """Each pair's first attempt, from the fake's attempts."""
    times: defaultdict[Pair, list[tuple[float, int]]] = defaultdict(list)
    for s in attempts:
        times[(s.token, s.payment_id)].append((s.at, s.status))
    tries: dict[Pair, FirstTry] = {}
    for pair, seen in times.items():
        seen.sort()
        gap = seen[1][0] - seen[0][0] if len(seen) > 1 else None
        tries[pair] = FirstTry(seen[0][0], seen[0][1] == 200, gap)
    return tries


def throughput(
    expected: Collection[Pair],
    tries: Mapping[Pair, FirstTry],
    accepted_at: Mapping[Pair, float],
    ready: float,
) -> dict[str, Any]:
    """The first pass and the whole delivery of a backlog, from the worker's ``/readyz``.

    The first pass ends when the last expected pair had its first attempt:
    its rate is the sending rate.  The whole delivery ends when the last pair
    was accepted, after the retries (at least 10 s later for any first
    attempt answered 429/503).
    """
    firsts = [tries[p] for p in expected if p in tries]
    first_end = max((t.at for t in firsts), default=None)
    first_seconds = first_end - ready if first_end is not None else None
    accepted = [accepted_at[p] for p in expected if p in accepted_at]
    last = max(accepted, default=None)
    all_seconds = last - ready if last is not None and len(accepted) == len(expected) else None
    gaps = [t.retry_gap_s for t in firsts if not t.ok and t.retry_gap_s is not None]
    ok = sum(1 for t in firsts if t.ok)
    return {
        "pairs": len(expected),
        "first_attempts": len(firsts),
        "accepted_at_first_try": ok,
        "retried": len(firsts) - ok,
        "never_attempted": len(expected) - len(firsts),
        "first_pass_seconds": first_seconds,
        "first_pass_per_second": rate(len(firsts), first_seconds),
        "all_accepted_seconds": all_seconds,
        "all_accepted_per_second": rate(len(expected), all_seconds),
        "min_retry_gap_seconds": min(gaps) if gaps else None,
    }


@dataclass(frozen=True)
class DeliveryLatencies:
    """Latencies (ms, sorted) from produce time to the fake's accept, first tries only."""

    values: list[float]
    #: Per payment: its slowest device, for payments whose every device was accepted at once.
    per_payment: list[float]
    #: Pairs left out: their first attempt was refused and a retry delivered them.
    retried: int
    #: Pairs never attempted before the wait ended: in ``values`` with a lower bound.
    missing: int
    #: The median latency of the pairs of the first and of the last tenth of the
    #: stream (by produce time): a worker slower than the stream gets later and later.
    p50_first_tenth_ms: float | None = None
    p50_last_tenth_ms: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """For the report."""
        return {
            "notifications": len(self.values),
            "p50_ms": percentile(self.values, 50),
            "p99_ms": percentile(self.values, 99),
            "max_ms": self.values[-1] if self.values else None,
            "payments_all_first_try": len(self.per_payment),
            "payment_p50_ms": percentile(self.per_payment, 50),
            "payment_p99_ms": percentile(self.per_payment, 99),
            "retried_excluded": self.retried,
            "missing": self.missing,
            "percentiles_are_lower_bounds": self.missing > 0,
            "p50_first_tenth_ms": self.p50_first_tenth_ms,
            "p50_last_tenth_ms": self.p50_last_tenth_ms,
        }


def first_try_latencies(
    expected: Collection[Pair],
    produced_ms: Sequence[int],
    tries: Mapping[Pair, FirstTry],
    accepted_at: Mapping[Pair, float],
    gave_up_ms: float,
) -> DeliveryLatencies:
    """Each pair's latency: its first accept (``at``) minus its payment's produce time.

    ``produced_ms[n]`` is the Kafka timestamp (produce time) of payment
    ``bp-<tag>-<n>``.  A pair whose first attempt was refused is
    left out (its latency is the retry's backoff, not the worker's); one
    never attempted counts with the lower bound ``gave_up_ms`` - produced.
    """
    timed: list[tuple[int, float]] = []  # (produced ms, latency ms)
    slowest: dict[str, float] = {}
    spoiled: set[str] = set()
    retried = missing = 0
    for pair in expected:
        payment_id = pair[1]
        produced = produced_ms[payment_index(payment_id)]
        first = tries.get(pair)
        if first is None or (first.ok and pair not in accepted_at):
            missing += 1
            timed.append((produced, gave_up_ms - produced))
            spoiled.add(payment_id)
            continue
        if not first.ok:
            retried += 1
            spoiled.add(payment_id)
            continue
        latency = accepted_at[pair] * 1000 - produced
        timed.append((produced, latency))
        slowest[payment_id] = max(latency, slowest.get(payment_id, latency))
    per_payment = [v for p, v in slowest.items() if p not in spoiled]
    timed.sort()
    tenth = max(1, len(timed) // 10)
    return DeliveryLatencies(
        sorted(v for _, v in timed),
        sorted(per_payment),
        retried,
        missing,
        p50_first_tenth_ms=percentile(sorted(v for _, v in timed[:tenth]), 50),
        p50_last_tenth_ms=percentile(sorted(v for _, v in timed[-tenth:]), 50),
    )


def fake_activity(
    arrivals: Iterable[float], latency_s: float, start: float, end: float
) -> dict[str, Any]:
    """How busy the worker kept the fake from ``start`` to ``end``.

    Each request is taken as in flight from its arrival for the scripted
    ``latency_s``.  ``busy_share`` is the share of the span with at least one
    request in flight, ``mean_in_flight`` the average number in flight and
    ``longest_idle_s`` the longest time with none: a sender that kept
    requests going all the time has a busy share near 1.
    """
    times = sorted(t for t in arrivals if start <= t <= end)
    span = end - start
    if not times or span <= 0:
        return {"busy_share": None, "mean_in_flight": None, "longest_idle_s": None}
    busy = 0.0
    longest = times[0] - start
    run_start, run_end = times[0], times[0] + latency_s
    for t in times[1:]:
        if t > run_end:
            busy += run_end - run_start
            longest = max(longest, t - run_end)
            run_start = t
        run_end = max(run_end, t + latency_s)
    busy += min(run_end, end) - run_start
    longest = max(longest, end - run_end)
    return {
        "busy_share": min(1.0, busy / span),
        "mean_in_flight": len(times) * latency_s / span,
        "longest_idle_s": longest,
    }


def cpu_between(samples: Sequence[tuple[float, float]], start: float, end: float) -> float | None:
    """CPU seconds used from ``start`` to ``end``, from ``(time, cumulative CPU s)`` samples.

    Each end is the last sample at or before it (the first one for ``start``
    before any sample); ``None`` without samples on both sides.
    """
    before = [cpu for at, cpu in samples if at <= start] or [s[1] for s in samples[:1]]
    until = [cpu for at, cpu in samples if at <= end]
    if not before or not until:
        return None
    return until[-1] - before[-1]
