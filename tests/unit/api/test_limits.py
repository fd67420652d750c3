"""The abuse limits: GCRA per key, Retry-After, bounded memory, client addresses."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from app.api import refusals as r
from app.api.callers import ANONYMOUS, SERVICE, user_caller
from app.api.limits import AbuseLimits, RateLimiter, client_key
from app.config import Settings


def test_a_fresh_key_gets_the_whole_burst_then_one_per_interval(clock):
    limiter = RateLimiter(20, 3600, clock=clock)
    assert all(limiter.acquire("u").allowed for _ in range(20))
    refused = limiter.acquire("u")
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(3600 / 20)
    clock.advance(3600 / 20 - 1)
    assert not limiter.acquire("u").allowed
    clock.advance(1)
    assert limiter.acquire("u").allowed
    assert not limiter.acquire("u").allowed


def test_refused_requests_are_not_counted(clock):
    limiter = RateLimiter(2, 60, clock=clock)
    limiter.acquire("u")
    limiter.acquire("u")
    for _ in range(100):
        assert not limiter.acquire("u").allowed
    clock.advance(30)
    assert limiter.acquire("u").allowed


def test_over_any_period_a_key_gets_at_most_twice_the_limit_less_one(clock):
    limit, period = 20, 3600.0
    limiter = RateLimiter(limit, period, clock=clock)
    granted: list[float] = []
    for _ in range(int(3 * period)):  # try every second for three periods
        if limiter.acquire("u").allowed:
            granted.append(clock())
        clock.advance(1)
    worst = max(sum(1 for t in granted if start <= t < start + period) for start in granted)
    assert worst == 2 * limit - 1
    # ... and the long-run rate is the limit.
    assert len(granted) <= limit + 3 * limit


def test_keys_are_independent(clock):
    limiter = RateLimiter(1, 60, clock=clock)
    assert limiter.acquire("a").allowed and limiter.acquire("b").allowed
    assert not limiter.acquire("a").allowed


def test_check_does_not_count(clock):
    limiter = RateLimiter(1, 60, clock=clock)
    for _ in range(5):
        assert limiter.check("a").allowed
    assert limiter.acquire("a").allowed
    assert not limiter.check("a").allowed


def test_record_counts_everything_but_saturates_at_one_window(clock):
    limiter = RateLimiter(60, 60, clock=clock)
    for _ in range(10_000):
        limiter.record("a")
    verdict = limiter.check("a")
    assert not verdict.allowed and verdict.retry_after == pytest.approx(1.0)
    # Once it stops, one request per interval frees up, not hours later.
    clock.advance(1)
    assert limiter.check("a").allowed


def test_idle_keys_are_dropped_and_lose_nothing(clock):
    limiter = RateLimiter(5, 60, clock=clock)
    for i in range(100):
        limiter.acquire(f"k{i}")
    assert len(limiter) == 100
    clock.advance(61)
    for _ in range(50):  # each call drops up to two idle keys from the old end
        limiter.check("other")
    assert len(limiter) == 0
    assert limiter.evicted_active == 0


def test_memory_is_bounded_whatever_the_number_of_keys(clock):
    limiter = RateLimiter(20, 3600, clock=clock, max_keys=1000)
    for i in range(50_000):
        limiter.acquire(f"user-{i}")
        clock.advance(0.001)
    assert len(limiter) == 1000
    # Active keys had to go to stay under the cap, and were counted.
    assert limiter.evicted_active == 49_000


def test_allocated_memory_stops_growing_at_the_cap(clock):
    limiter = RateLimiter(20, 3600, clock=clock, max_keys=2000)
    long_id = "x" * 256

    def feed(start: int, n: int) -> None:
        for i in range(start, start + n):
            limiter.acquire(f"{long_id}{i}")

    feed(0, 2000)
    tracemalloc.start()
    try:
        # Once the map is full and every entry was replaced while traced ...
        feed(2000, 4000)
        gc.collect()
        full, _ = tracemalloc.get_traced_memory()
        # ... 100,000 more 256-character keys leave nothing more behind.
        feed(6000, 100_000)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(limiter) == 2000
    assert full > 0
    assert after - full < full // 10


def test_the_newest_keys_survive_eviction(clock):
    limiter = RateLimiter(1, 3600, clock=clock, max_keys=3)
    for key in ("a", "b", "c", "d"):
        limiter.acquire(key)
    assert not limiter.acquire("d").allowed
    assert limiter.acquire("a").allowed  # evicted: a fresh allowance, never a wrong refusal


@pytest.mark.parametrize(("limit", "period", "keys"), [(0, 60, 1), (1, 0, 1), (1, 60, 0)])
def test_nonsense_limits_are_refused(limit, period, keys):
    with pytest.raises(ValueError):
        RateLimiter(limit, period, max_keys=keys)


# --- the API's limits ---------------------------------------------------------


def test_registrations_are_limited_per_user_with_retry_after(clock):
    limits = AbuseLimits(registrations_per_hour=3, clock=clock)
    alice, bob = user_caller("alice"), user_caller("bob")
    assert [limits.admit_registration(alice) for _ in range(3)] == [None] * 3
    refusal = limits.admit_registration(alice)
    assert (refusal.status, refusal.code, refusal.retry_after) == (
        429,
        r.TOO_MANY_REGISTRATIONS,
        1200,
    )
    assert refusal.headers() == {"Retry-After": "1200"}
    assert limits.admit_registration(bob) is None
    clock.advance(1199.5)
    assert limits.admit_registration(alice).retry_after == 1  # rounded up, never 0
    clock.advance(0.5)
    assert limits.admit_registration(alice) is None


def test_the_service_and_anonymous_callers_are_not_registration_limited(clock):
    limits = AbuseLimits(registrations_per_hour=1, clock=clock)
    for caller in (SERVICE, ANONYMOUS):
        assert all(limits.admit_registration(caller) is None for _ in range(10))


def test_refusals_from_an_address_block_it_with_retry_after(clock):
    limits = AbuseLimits(failures_per_minute=5, clock=clock)
    for status in (200, 202, 400, 404, 503):
        limits.record_answer("10.0.0.1", status)
    assert limits.admit_address("10.0.0.1") is None
    for status in (401, 403, 429, 401, 403):
        limits.record_answer("10.0.0.1", status)
    refusal = limits.admit_address("10.0.0.1")
    assert (refusal.status, refusal.code) == (429, r.TOO_MANY_FAILURES)
    assert refusal.headers() == {"Retry-After": "12"}
    assert limits.admit_address("10.0.0.2") is None
    # The 429 answers count too: hammering keeps the address blocked.
    for _ in range(20):
        clock.advance(6)
        limits.record_answer("10.0.0.1", 429)
        assert limits.admit_address("10.0.0.1") is not None
    clock.advance(12)
    assert limits.admit_address("10.0.0.1") is None


def test_the_limits_follow_the_settings(clock):
    settings = Settings.from_env(
        {
            "PUSHES_REGISTRATIONS_PER_USER_PER_HOUR": "7",
            "PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE": "9",
        }
    )
    limits = AbuseLimits.from_settings(settings, clock=clock)
    assert (limits.registrations.limit, limits.failures.limit) == (7, 9)
    assert (limits.registrations.period, limits.failures.period) == (3600, 60)


# --- client addresses ---------------------------------------------------------


@pytest.mark.parametrize(
    ("remote", "forwarded", "hops", "key"),
    [
        ("192.0.2.7", None, 0, "192.0.2.7"),
        ("192.0.2.7", "198.51.100.1", 0, "192.0.2.7"),  # not trusted: ignored
        ("10.0.0.2", "198.51.100.1", 1, "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", 1, "198.51.100.1"),  # the spoofed left part
        ("10.0.0.3", "198.51.100.1, 10.0.0.2", 2, "198.51.100.1"),
        ("10.0.0.3", "198.51.100.1", 2, "198.51.100.1"),  # fewer entries than hops
        ("10.0.0.2", "", 1, "10.0.0.2"),
        ("2001:db8:1:2:3:4:5:6", None, 0, "2001:db8:1:2::/64"),
        ("10.0.0.2", "[2001:db8:1:2::9]", 1, "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", None, 0, "192.0.2.7"),
        (None, None, 0, "unknown"),
        ("not-an-ip", None, 0, "not-an-ip"),
    ],
)
def test_the_client_key(remote, forwarded, hops, key):
    assert client_key(remote, forwarded, hops) == key


def test_one_ipv6_subscriber_is_one_key():
    keys = {client_key(f"2001:db8:aa:bb::{i:x}", None, 0) for i in range(1000)}
    assert len(keys) == 1
