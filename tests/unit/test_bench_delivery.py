"""The delivery scenario's pure parts: its workload, expected pairs, and the fake's records."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench.config import scaled
from bench.delivery import (
    MAX_DEVICES,
    FirstTry,
    Sent,
    accepted_records,
    attempt_records,
    check_pairs,
    cpu_between,
    delivery_payments,
    fake_activity,
    first_accepts,
    first_tries,
    first_try_latencies,
    pairs_of,
    registrations,
    sequential_rate,
    split_by_payment,
    throughput,
    user_tokens,
)
from bench.report import Target, table, targets


def test_users_get_one_to_three_devices_and_every_one_is_registered():
    tokens = user_tokens(300, seed=4)
    counts = Counter(len(t) for t in tokens)
    assert set(counts) == {1, 2, 3}
    assert all(counts[n] > 60 for n in (1, 2, 3))  # uniform-ish, 100 expected each
    assert user_tokens(300, seed=4) == tokens  # seeded
    records = [json.loads(v) for _, v in registrations(tokens)]
    assert len(records) == sum(counts[n] * n for n in counts)
    by_user: dict[int, list[str]] = {}
    for key, value in registrations(tokens):
        body = json.loads(value)
        assert key == str(body["user_id"]).encode()
        by_user.setdefault(body["user_id"], []).append(body["token"])
    assert [by_user[i + 1] for i in range(300)] == tokens
    assert max(len(t) for t in by_user.values()) <= MAX_DEVICES
    assert len({r["updated_at"] for r in records}) == len(records)


def test_expected_pairs_are_one_per_device_of_each_original_payment():
    tokens = user_tokens(50, seed=1)
    records = list(delivery_payments(2000, tokens, seed=2, tag="d"))
    pairs = [pair for record in records for pair in pairs_of(record, tokens)]
    originals = [r for r in records if not r.duplicate]
    assert 0 < len(records) - len(originals) < 200  # about 5% re-sent
    assert len(pairs) == len(set(pairs)) == sum(r.devices for r in originals)
    for record in originals[:50]:
        user = json.loads(record.value)["user_id"]
        assert record.devices == len(tokens[user - 1])
        assert pairs_of(record, tokens) == [(t, record.payment_id) for t in tokens[user - 1]]
    assert all(pairs_of(r, tokens) == [] for r in records if r.duplicate)


def accepted_body(*records: tuple[float, str, str]) -> dict[str, object]:
    return {
        "accepted": [
            {
                "at": at,
                "name": f"projects/p/messages/{i}",
                "project": "p",
                "message": {"token": token, "data": {"payment_id": payment}},
            }
            for i, (at, token, payment) in enumerate(records)
        ]
    }


def test_the_fakes_records_are_read_and_checked_pair_by_pair():
    accepted = accepted_records(
        accepted_body((1.5, "t1", "p1"), (1.7, "t2", "p1"), (12.0, "t1", "p1"), (2.0, "tX", "p9"))
    )
    assert accepted[0] == Sent(1.5, "t1", "p1", 200)
    check = check_pairs({("t1", "p1"), ("t2", "p1"), ("t3", "p2")}, accepted)
    assert (check.expected, check.accepted) == (3, 4)
    assert (check.missing, check.duplicates, check.extra) == (1, 1, 1)
    assert not check.exact
    assert check_pairs({("t1", "p1")}, accepted[:1]).exact
    assert first_accepts(accepted)[("t1", "p1")] == 1.5  # the earlier of its two accepts
    mine, others = split_by_payment(accepted, "p1")
    assert [s.token for s in mine] == ["t1", "t2", "t1"] and others == 1

    def attempt(at, token, status):
        message = {"token": token, "data": {"payment_id": "p1"}} if token else None
        return {"at": at, "token": token, "status": status, "message": message}

    attempts = attempt_records(
        {
            "attempts": [
                attempt(1.0, "t1", 429),
                attempt(0.5, None, 400),  # a body that was not JSON: no message, skipped
                attempt(11.2, "t1", 200),
                attempt(1.1, "t2", 200),
            ]
        }
    )
    assert len(attempts) == 3
    tries = first_tries(attempts)
    assert tries[("t1", "p1")] == FirstTry(1.0, False, pytest.approx(10.2))
    assert tries[("t2", "p1")] == FirstTry(1.1, True, None)


def test_throughput_separates_the_first_pass_from_the_retries():
    expected = {("a", "p1"), ("b", "p1"), ("c", "p2"), ("d", "p3")}
    tries = {
        ("a", "p1"): FirstTry(100.4, True, None),
        ("b", "p1"): FirstTry(100.6, False, 10.5),
        ("c", "p2"): FirstTry(101.0, True, None),
        ("d", "p3"): FirstTry(100.8, False, 12.0),
        ("z", "p9"): FirstTry(109.0, True, None),  # not expected: ignored
    }
    accepted = {("a", "p1"): 100.4, ("b", "p1"): 111.1, ("c", "p2"): 101.0, ("d", "p3"): 112.8}
    result = throughput(expected, tries, accepted, ready=100.0)
    assert result["first_attempts"] == 4 and result["accepted_at_first_try"] == 2
    assert result["retried"] == 2 and result["never_attempted"] == 0
    assert result["first_pass_seconds"] == pytest.approx(1.0)
    assert result["first_pass_per_second"] == pytest.approx(4.0)
    assert result["all_accepted_seconds"] == pytest.approx(12.8)
    assert result["min_retry_gap_seconds"] == pytest.approx(10.5)

    del accepted[("d", "p3")]
    unfinished = throughput(expected, tries, accepted, ready=100.0)
    assert unfinished["all_accepted_seconds"] is None  # not all there: no end yet


def test_latency_is_the_first_accept_minus_the_produce_time_of_first_tries_only():
    produced_ms = [1_000, 2_000, 3_000]  # payments bp-s-0, bp-s-1, bp-s-2
    expected = {("a", "bp-s-0"), ("b", "bp-s-0"), ("c", "bp-s-1"), ("d", "bp-s-2")}
    tries = {
        ("a", "bp-s-0"): FirstTry(1.020, True, None),
        ("b", "bp-s-0"): FirstTry(1.080, True, None),
        ("c", "bp-s-1"): FirstTry(2.010, False, 10.0),  # retried: left out
        # ("d", "bp-s-2") never attempted
    }
    accepted = {("a", "bp-s-0"): 1.020, ("b", "bp-s-0"): 1.080, ("c", "bp-s-1"): 12.01}
    result = first_try_latencies(expected, produced_ms, tries, accepted, gave_up_ms=9_000)
    assert result.values == pytest.approx([20.0, 80.0, 6_000.0])  # d at its lower bound
    assert result.per_payment == pytest.approx([80.0])  # bp-s-0's slowest device
    assert (result.retried, result.missing) == (1, 1)
    summary = result.as_dict()
    assert summary["p50_first_tenth_ms"] == pytest.approx(20.0)  # the earliest produced
    assert summary["p50_last_tenth_ms"] == pytest.approx(6_000.0)  # the latest: d's bound
    assert summary["percentiles_are_lower_bounds"] is True
    assert summary["retried_excluded"] == 1 and summary["notifications"] == 3


def test_fake_activity_measures_the_time_with_requests_in_flight():
    # Two bursts of 50 ms requests: 1.00-1.06 and 1.50-1.55; the span is 1.0-2.0.
    result = fake_activity([1.00, 1.01, 1.50, 3.0], 0.05, start=1.0, end=2.0)
    assert result["busy_share"] == pytest.approx(0.11)
    assert result["longest_idle_s"] == pytest.approx(0.45)  # 1.55 to the end
    assert result["mean_in_flight"] == pytest.approx(0.15)
    assert fake_activity([], 0.05, 1.0, 2.0)["busy_share"] is None


def test_cpu_between_and_the_sequential_rate():
    samples = [(10.0, 1.0), (11.0, 1.5), (12.0, 2.5), (13.0, 2.6)]
    assert cpu_between(samples, 11.0, 12.5) == pytest.approx(1.0)
    assert cpu_between(samples, 5.0, 13.0) == pytest.approx(1.6)  # from the first sample
    assert cpu_between(samples, 5.0, 6.0) is None
    assert sequential_rate(0.05) == pytest.approx(20.0)
    assert sequential_rate(0.0) is None


def test_delivery_targets_and_the_join_reference():
    report = {
        "config": {"join_reference": 2_000.0},
        "join": {"payments_per_second": 1_900.0},
        "delivery": {"notifications_per_second": 3_100.0, "latency_p99_ms": 300.0},
    }
    rows = {t.metric: t for t in targets(report)}
    assert rows["delivery throughput"].met is True
    assert rows["delivery p99"].met is False
    assert rows["join vs reference"].met is False  # slower than the reference
    report["config"]["join_reference"] = None
    rows = {t.metric: t for t in targets(report)}
    reference = rows["join vs reference"]
    assert reference.met is None and reference.as_dict()["target"] == "not compared"
    assert "not compared" in table([reference], 1.0)
    assert Target("x", 5.0, "ms", "<=", None).met is None


def test_scaled_delivery_sizes_and_their_checks():
    quick = scaled(0.05)
    assert (quick.delivery_users, quick.delivery_payments) == (2_500, 5_000)
    assert quick.delivery_seconds == 5.0 and quick.delivery_budget_seconds == 180.0
    assert scaled(1.0).delivery_seconds == 60.0
    with pytest.raises(ValueError):
        scaled(0.05, fcm_share_429=0.7, fcm_share_503=0.6)
    with pytest.raises(ValueError):
        scaled(0.05, join_reference=0.0)
