"""The backlog scenario's pure parts: workload, event-time expectations, line checks,
the Quix contestant's steps and the side-by-side table."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import datetime

import pytest

from bench import compare
from bench.backlog import (
    DeviceHistory,
    TimedPayment,
    TokenChange,
    backlog_span_ms,
    expected_deliveries,
    expected_lines,
    iso_ms,
    payments_start_ms,
    timed_payments,
    token_changes,
)
from bench.config import BenchConfig
from bench.lines import compare as compare_lines
from bench.lines import expected_fingerprints, fingerprints, line_text, sink_fingerprints
from bench.quix import (
    Progress,
    event_time_ms,
    first_outcome,
    fold_devices,
    fold_step,
    lines_for,
    merge,
    parse_payment_json,
    parse_token,
)
from bench.run import parse_args
from bench.worker import cpu_seconds
from bench.workload import Mix, PaymentRecord

START = 1_790_000_000_000  # 2026-09-21, an arbitrary epoch ms


def change(at, user, device, token, platform="ios"):
    return TokenChange(at_ms=at, user=user, device_id=device, token=token, platform=platform)


def timed(payment_id, user, at, *, duplicate=False, status="succeeded"):
    value = {
        "payment_id": payment_id,
        "user_id": user,
        "status": status,
        "amount": "10.00",
        "currency": "EUR",
        "occurred_at": iso_ms(at),
    }
    record = PaymentRecord(
        key=str(user).encode(),
        value=json.dumps(value).encode(),
        payment_id=payment_id,
        devices=0,
        duplicate=duplicate,
    )
    return TimedPayment(record, at, at)


class DictState:
    """Quix's per-key State, for one key."""

    def __init__(self):
        self.data = {}

    def get(self, key, default=None):
        return self.data.get(key, default)

    def set(self, key, value):
        self.data[key] = value


# --- the workload ------------------------------------------------------------------


def test_iso_ms_is_exact_to_the_millisecond():
    for at in (0, 1, 999, START, START + 123, 2**41 + 7):
        text = iso_ms(at)
        moment = datetime.fromisoformat(text)
        assert moment.utcoffset().total_seconds() == 0
        assert int(moment.timestamp()) * 1000 + moment.microsecond // 1000 == at
    assert iso_ms(1) < iso_ms(2) < iso_ms(1000)


def test_token_changes_register_round_robin_then_change_a_share():
    changes = token_changes(2000, 400, seed=4, start_ms=START, removed=0.1, refreshed=0.2)
    registrations, rest = changes[:2000], changes[2000:]
    assert [c.at_ms for c in changes] == list(range(START, START + len(changes)))
    per_user = Counter(c.user for c in registrations)
    assert set(per_user.values()) == {5} and len(per_user) == 400
    assert all(c.token for c in registrations)
    removals = [c for c in rest if c.token is None]
    refreshes = [c for c in rest if c.token is not None]
    assert 0.07 < len(removals) / 2000 < 0.13
    assert 0.16 < len(refreshes) / 2000 < 0.24
    registered = {(c.user, c.device_id): c.token for c in registrations}
    # Every change is of a registered device, at most one change per device.
    assert len({(c.user, c.device_id) for c in rest}) == len(rest)
    assert all((c.user, c.device_id) in registered for c in rest)
    assert all(registered[(c.user, c.device_id)] != c.token for c in refreshes)
    with pytest.raises(ValueError):
        token_changes(10, 2, seed=1, start_ms=START, removed=0.6, refreshed=0.6)


def test_a_token_record_carries_its_event_time_as_field_and_timestamp():
    key, value, timestamp = change(START + 5, "42", "device-1", None).record()
    body = json.loads(value)
    assert key == b"42" and timestamp == START + 5
    assert body["user_id"] == 42 and body["token"] is None and body["device_id"] == "device-1"
    assert body["updated_at"] == iso_ms(START + 5)


def test_timed_payments_happen_in_order_and_resends_keep_their_time():
    mix = Mix(duplicates=0.2)
    payments = list(timed_payments(500, tokens=50, users=10, seed=2, mix=mix, start_ms=START))
    assert [p.timestamp_ms for p in payments] == list(range(START, START + 500))
    first = {}
    for p in payments:
        body = json.loads(p.record.value)
        assert body["occurred_at"] == iso_ms(p.at_ms)
        if p.record.duplicate:
            assert first[p.record.payment_id].record.value == p.record.value
            assert p.timestamp_ms > p.at_ms
        else:
            first[p.record.payment_id] = p
            assert p.at_ms == p.timestamp_ms
    assert any(p.record.duplicate for p in payments)
    assert backlog_span_ms(50, 500) >= 500 + 2 * 50


# --- event-time expectations -------------------------------------------------------


def test_deliveries_follow_event_time_and_the_grace():
    history = DeviceHistory(
        [
            change(100, "1", "a", "tok-a1"),
            change(200, "1", "b", "tok-b"),
            change(300, "1", "a", "tok-a2"),  # a new token for a
            change(400, "1", "b", None),  # b removed
            change(500, "1", "c", "tok-c"),  # after the payment at 450, within 100
            change(600, "1", "d", "tok-d"),  # beyond the grace
            change(460, "1", "a", "tok-a3"),  # a late new token of a known device
            change(50, "2", "x", "tok-x"),
        ]
    )
    assert history.deliveries("1", 450, grace_ms=100) == [("a", "tok-a2"), ("c", "tok-c")]
    assert history.deliveries("1", 450, grace_ms=0) == [("a", "tok-a2")]
    # At exactly an event's time the event counts.
    assert history.deliveries("1", 200, grace_ms=0) == [("a", "tok-a1"), ("b", "tok-b")]
    # Before any registration: only the late ones.
    assert history.deliveries("1", 0, grace_ms=150) == [("a", "tok-a1")]
    assert history.deliveries("2", 10, grace_ms=0) == []
    assert history.deliveries("unknown", 10_000, grace_ms=600_000) == []


def test_a_device_removed_before_the_payment_and_registered_again_later_is_late():
    history = DeviceHistory(
        [change(10, "1", "a", "t1"), change(20, "1", "a", None), change(40, "1", "a", "t2")]
    )
    assert history.deliveries("1", 30, grace_ms=5) == []
    assert history.deliveries("1", 30, grace_ms=10) == [("a", "t2")]


def test_expected_deliveries_skip_resends_and_leave_unknown_users_without_lines():
    history = DeviceHistory([change(10, "7", "a", "tok-a"), change(11, "7", "b", "tok-b")])
    payments = [
        timed("p-1", 7, 20),
        timed("p-1", 7, 20, duplicate=True),
        timed("p-2", 8, 21),
        timed("p-3", " 7 ", 22, status="failed"),  # the user id is normalised
    ]
    got = [(p.payment_id, devices) for p, devices in expected_deliveries(history, payments, 0)]
    both = [("a", "tok-a"), ("b", "tok-b")]
    assert got == [("p-1", both), ("p-2", []), ("p-3", both)]
    lines = list(expected_lines(history, payments, 0))
    assert len(lines) == 4
    assert lines[0].startswith("send notification to mobile app with token: tok-a and message: ")
    assert "Payment p-1 " in lines[0] and "Payment p-3 " in lines[3] and "failed" in lines[3]


def test_in_the_bench_workload_every_token_precedes_every_payment():
    changes = token_changes(300, 60, seed=1, start_ms=START)
    first = payments_start_ms(changes)
    assert first > max(c.at_ms for c in changes)
    final: dict[str, dict[str, str]] = {}
    for c in changes:  # an independent fold, in topic order
        devices = final.setdefault(c.user, {})
        if c.token is None:
            devices.pop(c.device_id, None)
        else:
            devices[c.device_id] = c.token
    history = DeviceHistory(changes)
    payments = list(timed_payments(400, tokens=300, users=60, seed=1, mix=Mix(), start_ms=first))
    for payment, devices in expected_deliveries(history, payments, 600_000):
        assert devices == sorted(final.get(payment.user_id, {}).items())


# --- line checks ---------------------------------------------------------------------


def test_line_text_drops_the_log_prefix_and_the_trailing_space():
    text = "send notification to mobile app with token: t and message: m"
    raw = b"[2026-11-27 17:46:42,347] [1] [INFO]: " + text.encode() + b" \n"
    assert line_text(raw) == text.encode()
    assert sink_fingerprints([raw])[0] == expected_fingerprints([text])[0]
    assert sink_fingerprints([raw])[0] != expected_fingerprints([text + "x"])[0]


def test_compare_counts_missing_and_extra_lines_as_multisets():
    expected = fingerprints([b"a", b"a", b"b", b"d"])
    written = fingerprints([b"b", b"a", b"b", b"c"])
    check = compare_lines(expected, written)
    assert (check.expected, check.written, check.missing, check.extra) == (4, 4, 2, 2)
    assert not check.exact
    assert compare_lines(expected, fingerprints([b"d", b"a", b"b", b"a"])).exact
    nothing = compare_lines(expected, fingerprints([]))
    assert (nothing.missing, nothing.extra) == (4, 0)
    assert compare_lines(fingerprints([]), fingerprints([b"x"])).extra == 1


# --- the Quix contestant's steps -------------------------------------------------------


def test_fold_registers_replaces_and_removes_without_touching_its_input():
    register = parse_token({"user_id": 1, "device_id": "a", "token": "t1"})
    replace = parse_token({"user_id": 1, "device_id": "a", "token": "t2"})
    other = parse_token({"user_id": 1, "device_id": "b", "token": "t3"})
    remove = parse_token({"user_id": 1, "device_id": "a", "token": None})
    assert parse_token({"user_id": 1}) is None  # no token field: the worker dead-letters it
    devices = fold_devices(None, register)
    before = dict(devices)
    assert fold_devices(devices, replace) == {"a": "t2"} and devices == before
    state = DictState()
    for event in (register, other, replace, remove):
        result = fold_step(event, state)
    assert result == {"b": "t3"} and state.get("devices") == {"b": "t3"}


def test_first_outcome_passes_each_payment_status_once():
    state = DictState()
    paid = {"payment_id": "p", "status": "succeeded"}
    assert first_outcome(paid, state)
    assert not first_outcome(dict(paid), state)
    assert first_outcome({"payment_id": "p", "status": "failed"}, state)


def test_a_joined_payment_gives_one_line_per_device_in_device_order():
    payment = parse_payment_json(
        {"payment_id": "p-9", "user_id": " 5", "status": "failed", "amount": 3,
         "currency": "RUB", "reason": "card expired"}
    )  # fmt: skip
    assert payment is not None and payment["user_id"] == "5"
    assert parse_payment_json({"payment_id": "p", "user_id": 1, "status": "odd"}) is None
    devices = {"b": "tok-b", "a": "tok-a"}
    joined = merge(payment, devices)
    assert joined["devices"] is devices and merge(payment, None)["devices"] == {}
    lines = lines_for(joined)
    assert [line.split(" and message: ")[0].rsplit(" ", 1)[1] for line in lines] == [
        "tok-a",
        "tok-b",
    ]
    assert all("Payment p-9 of 3.00 RUB failed: card expired" in line for line in lines)
    assert lines_for(merge(payment, None)) == []


def test_event_time_is_the_iso_field_else_the_kafka_timestamp():
    assert event_time_ms({"occurred_at": iso_ms(START + 7)}, "occurred_at", 1) == START + 7
    assert event_time_ms({"occurred_at": "not a time"}, "occurred_at", 1) == 1
    assert event_time_ms({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at", 2) == 2  # naive
    assert event_time_ms({}, "occurred_at", 3) == 3
    assert event_time_ms(None, "updated_at", 4) == 4


def test_progress_is_done_at_every_end_offset_and_every_repartitioned_payment():
    progress = Progress({("t", 0): 2, ("t", 1): 0, ("p", 0): 1})
    progress.forwarded = 1
    progress.processed("t", 0, 0)
    assert progress.started_at is not None and not progress.finish()
    progress.processed("t", 0, 1)
    progress.processed("p", 0, 0)
    assert not progress.done  # the payment is still on its way through the repartition
    progress.processed("repartition__g--p--user", 0, 0)
    assert progress.finish() and progress.done_at is not None
    first = progress.done_at
    assert progress.finish() and progress.done_at == first


# --- the report ------------------------------------------------------------------------


def test_the_side_by_side_table_has_a_row_per_contestant_that_ran():
    report = {
        "join": {"payments_per_second": 20_000.0, "peak_rss_mb": 300.0, "complete": True,
                 "notification_lines": 10},
        "backlog": {"payments_per_second": 9_000.0, "cpu_seconds": 50.0, "peak_rss_mb": 310.0,
                    "missing_lines": 5, "extra_lines": 1, "exact": False},
        "quix": {"payments_per_second": 3_000.0, "cpu_seconds": 90.0, "peak_rss_mb": 500.0,
                 "missing_lines": 0, "extra_lines": 0, "exact": True, "ratio_ours_to_quix": 3.0},
        "baseline": {"skipped": True},
    }  # fmt: skip
    rows = {(r.name, r.workload): r for r in compare.contestants(report)}
    assert set(rows) == {("ours", "join"), ("ours", "backlog"), ("Quix Streams", "backlog")}
    assert rows[("ours", "backlog")].lines == "5 missing, 1 extra"
    assert rows[("Quix Streams", "backlog")].lines == "exact"
    assert rows[("ours", "join")].cpu_seconds is None
    text = compare.table(report)
    assert "ours / Quix on the backlog: 3.00" in text
    assert compare.table({"join": {"skipped": True}}) == ""
    skipped = {"quix": {"skipped": True, "reason": "no .venv-quix"}}
    assert compare.table(skipped) == "Quix skipped: no .venv-quix"
    failed = compare.contestants({"quix": {"error": "boom", "payments_per_second": 1.0}})
    assert failed[0].lines == "FAILED"


def test_only_runs_the_named_sections_and_brings_ingest_along_when_needed():
    config, _ = parse_args(["--scale", "0.01", "--only", "backlog,quix"])
    assert not config.runs_ingest_phases and config.runs_backlog_phases
    assert not config.runs("ingest") and config.runs("quix")
    config, _ = parse_args(["--scale", "0.01", "--only", "join"])
    assert config.runs("ingest") and config.runs("join") and not config.runs("backlog")
    config, _ = parse_args(["--scale", "0.01", "--skip", "backlog,quix"])
    assert config.runs_ingest_phases and not config.runs_backlog_phases
    with pytest.raises(SystemExit):
        parse_args(["--skip", "ingest"])  # the join would have no table
    with pytest.raises(SystemExit):
        parse_args(["--only", "backlog", "--skip", "quix"])


def test_backlog_settings_are_checked():
    with pytest.raises(ValueError):
        BenchConfig(backlog_removed=0.7, backlog_refreshed=0.4)
    with pytest.raises(ValueError):
        BenchConfig(backlog_grace_seconds=-1)
    assert BenchConfig(backlog_grace_seconds=0).describe()["backlog_grace_seconds"] == 0


def test_cpu_seconds_of_a_process_grow_while_it_works():
    import os

    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None and after - before >= 0.1
    assert cpu_seconds(2**22 + 12345) is None  # above the kernel's pid limit: no such process
