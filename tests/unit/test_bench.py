"""The benchmark harness's pure parts: workload, sink parsing, latency, stats, profile."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import latency, sink
from bench.config import BenchConfig, scaled
from bench.profile import is_idle, short_path, top_functions
from bench.report import Target, targets
from bench.stats import growth, percentile
from bench.workload import (
    Expected,
    Mix,
    devices_of,
    payment_index,
    payment_records,
    token_records,
)


def test_tokens_spread_round_robin_and_devices_of_agrees():
    records = list(token_records(tokens=23, users=5, seed=1))
    per_user = Counter(json.loads(v)["user_id"] for _, v in records)
    assert [per_user[u + 1] for u in range(5)] == [devices_of(u, 23, 5) for u in range(5)]
    assert sum(devices_of(u, 23, 5) for u in range(5)) == 23
    key, value = records[0]
    assert key == str(json.loads(value)["user_id"]).encode()
    assert len(json.loads(value)["token"]) > 150  # shaped like an FCM token


def test_payments_mix_and_expected_lines():
    mix = Mix(failed=0.2, unknown=0.05, duplicates=0.05, keyed_by_payment=0.5)
    expected = Expected()
    records = list(payment_records(20_000, tokens=1000, users=200, seed=3, mix=mix, tag="t"))
    for record in records:
        expected.add(record)
    originals = [r for r in records if not r.duplicate]
    assert expected.payments == 20_000
    assert expected.duplicates == 20_000 - len(originals)
    assert 0.04 < expected.duplicates / 20_000 < 0.06
    assert 0.17 < expected.failed / len(originals) < 0.23
    assert 0.45 < expected.keyed_by_payment / 20_000 < 0.55
    assert expected.without_token == sum(1 for r in originals if r.devices == 0)
    assert expected.notifications == sum(r.devices for r in originals)
    assert all(r.devices == 5 for r in originals if r.devices)  # 1000 tokens / 200 users
    # A duplicate re-sends an earlier payment's exact value.
    values = {r.payment_id: r.value for r in originals}
    assert all(values[r.payment_id] == r.value for r in records if r.duplicate)
    assert payment_index("bp-t-123") == 123


def test_payment_keys_are_the_user_or_the_payment_id():
    for record in payment_records(500, tokens=10, users=10, seed=1, mix=Mix(), tag="k"):
        body = json.loads(record.value)
        wanted = body["payment_id"] if record.keyed_by_payment else str(body["user_id"])
        assert record.key == wanted.encode()


LINE = (
    b"[2026-11-27 17:46:42,347] [20831] [INFO]: send notification to mobile app with token: "
    b"abc:APA91bxyz and message: Payment bp-join-17 of 12.00 RUB succeeded \n"
)
NO_TOKEN = (
    b"[2026-11-27 17:46:43,001] [20831] [INFO]: no push token for user 9: "
    b"payment bp-join-18 (failed) not notified \n"
)


def test_sink_lines_are_counted_timed_and_attributed(tmp_path):
    assert sink.line_time_ms(LINE) == 1795801602347
    assert sink.payment_id_of(LINE) == "bp-join-17"
    complete, rest = sink.split_complete(LINE + NO_TOKEN + LINE[:30])
    assert rest == LINE[:30]
    assert sink.count_lines(complete) == sink.LineCounts(1, 1)

    path = tmp_path / "worker.log"
    path.write_bytes(LINE + NO_TOKEN[:40])
    follower = sink.SinkFollower(path)
    assert follower.poll() == sink.LineCounts(1, 0)
    with path.open("ab") as f:
        f.write(NO_TOKEN[40:] + LINE)
    assert follower.poll() == sink.LineCounts(2, 1)

    summary = sink.summarize(sink.notification_lines(path))
    assert (summary.lines, summary.first_ms, summary.last_ms) == (2, 1795801602347, 1795801602347)
    assert summary.per_second == [(1795801602, 2)]
    assert sink.first_line_ms(path, 0, b"not notified") == 1795801603001
    assert sink.first_line_ms(path, 0, b"not notified", b"send notification") == 1795801602347


def test_latency_counts_missing_lines_with_their_lower_bound():
    produced = [1000, 2000, 3000]
    lines = [2, 1, 1]
    arrivals = [(1010, 0), (1030, 0), (3020, 2)]  # payment 1's line never came
    window, whole = latency.measure(arrivals, produced, lines, window_end_ms=2500, gave_up_ms=9000)
    assert window.values == [10, 30, 7000] and window.missing == 1 and window.lower_bound
    assert whole.values == [10, 20, 30, 7000] and whole.missing == 1


def test_stats():
    assert percentile([], 99) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile(list(range(1, 101)), 99) == 99.0
    assert percentile([5.0], 99) == 5.0
    samples = [(float(t), 100.0) for t in range(10)] + [(float(t), 110.0) for t in range(10, 20)]
    assert growth(samples) == pytest.approx(0.10)


def test_scaled_config_shrinks_counts_and_durations_with_floors():
    full = scaled(1.0)
    assert (full.tokens, full.users, full.payments) == (1_000_000, 200_000, 1_000_000)
    assert full.paced_payments == 600_000  # 2,000/s for the 300 s soak
    quick = scaled(0.05)
    assert (quick.tokens, quick.users, quick.payments) == (50_000, 10_000, 50_000)
    assert quick.latency_seconds == 5.0 and quick.soak_seconds == 15.0
    assert scaled(0.01, latency_seconds=30).soak_seconds == 30
    with pytest.raises(ValueError):
        BenchConfig(tokens=100, users=5)  # 20 devices a user would be evicted
    with pytest.raises(ValueError):
        scaled(1.0, skip=frozenset({"nonsense"}))


def test_targets_read_the_report_sections():
    report = {
        "join": {"payments_per_second": 25_000.0, "ratio_to_baseline": 0.4},
        "backlog": {"exact": True},
        "quix": {"ratio_ours_to_quix": 1.2},
        "latency": {"p99_ms": 12.0},
        "memory": {"join_peak_mb": 350.0, "recovery_peak_mb": 420.0},
        "soak": {"rss_growth": 0.02},
    }
    met = {t.metric: t.met for t in targets(report)}
    assert met["backlog lines exact"] is True
    assert met["backlog / Quix Streams"] is False
    assert met["join / baseline"] is False
    assert met["latency p99"] is True
    assert met["worker peak RSS"] is False  # the larger of the two peaks
    assert met["RSS growth over soak"] is True
    assert met["ingest"] is None  # not measured
    assert Target("x", 10.0, "%", "<", 10).met is False


def test_profile_summary_counts_busy_samples_and_reports_idle():
    root = "/work/main"
    frames = [
        {"name": "run_forever", "file": "/usr/lib/python3.11/asyncio/base_events.py"},
        {"name": "Engine._process", "file": f"{root}/app/streams/engine.py"},
        {"name": "Logger.info", "file": "/usr/lib/python3.11/logging/__init__.py"},
        {"name": "EpollSelector.select", "file": "/usr/lib/python3.11/selectors.py"},
    ]
    doc = {
        "shared": {"frames": frames},
        "profiles": [
            {
                "name": "MainThread",
                "samples": [[0, 1, 2], [0, 1], [0, 3], [0, 3]],
                "weights": [0.01] * 4,
            }
        ],
    }
    summary = top_functions(doc, root)
    assert summary.samples == 2
    assert summary.threads["MainThread"] == {"samples": 4, "idle_share": 0.5}
    assert [(f.function, f.samples) for f in summary.by_self] == [
        ("Logger.info (logging/__init__.py)", 1),
        ("Engine._process (app/streams/engine.py)", 1),
    ]
    assert summary.ours[0].function == "Engine._process (app/streams/engine.py)"
    assert summary.ours[0].share == 1.0
    assert is_idle("EpollSelector.select (selectors.py)")
    assert not is_idle("select (app/streams/engine.py)")
    assert short_path(f"{root}/.venv/lib/python3.11/site-packages/faust/streams.py", root) == (
        "faust/streams.py"
    )
