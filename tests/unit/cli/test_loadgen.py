import pytest

from app.cli.loadgen import (
    LoadSpec,
    pacing_delay,
    payment_records,
    progress_line,
    summary_line,
    token_records,
)
from app.domain.records import parse_payment, parse_token_event


def test_the_same_seed_gives_the_same_records():
    spec = LoadSpec(count=50, seed=7, failed_share=0.3, unknown_share=0.2)
    assert list(payment_records(spec)) == list(payment_records(spec))
    assert list(token_records(spec)) == list(token_records(spec))
    other = LoadSpec(count=50, seed=8, failed_share=0.3, unknown_share=0.2)
    assert list(payment_records(spec)) != list(payment_records(other))


def test_generated_records_are_valid():
    spec = LoadSpec(count=200, seed=1, failed_share=0.5, unknown_share=0.5)
    for record in token_records(spec):
        parse_token_event(record)
    for record in payment_records(spec):
        parse_payment(record)


def test_tokens_cover_the_user_pool_round_robin():
    users = [r["user_id"] for r in token_records(LoadSpec(count=6, users=3))]
    assert users == ["load-0", "load-1", "load-2"] * 2


def test_shares_of_failures_and_unknown_users_are_about_right():
    records = list(
        payment_records(
            LoadSpec(count=4000, seed=3, users=10, failed_share=0.25, unknown_share=0.1)
        )
    )
    failed = sum(r["status"] == "failed" for r in records) / len(records)
    unknown = sum(r["user_id"].startswith("unknown-") for r in records) / len(records)
    assert 0.22 < failed < 0.28 and 0.08 < unknown < 0.12
    assert all("reason" in r for r in records if r["status"] == "failed")
    known = {r["user_id"] for r in records if not r["user_id"].startswith("unknown-")}
    assert known <= {f"load-{i}" for i in range(10)}


@pytest.mark.parametrize(
    "kwargs",
    [{"count": -1}, {"count": 1, "failed_share": 1.5}, {"count": 1, "unknown_share": -0.1}],
)
def test_bad_specs_are_refused(kwargs):
    with pytest.raises(ValueError):
        LoadSpec(**kwargs)


def test_pacing_keeps_the_average_rate():
    assert pacing_delay(0, 0.0, 100) == 0.0
    assert pacing_delay(50, 0.2, 100) == pytest.approx(0.3)
    assert pacing_delay(50, 0.9, 100) == 0.0  # behind: catch up, no wait
    assert pacing_delay(10_000, 0.0, 0) == 0.0  # no limit


def test_progress_and_summary_lines():
    assert progress_line(50, 100, 2.0, errors=1, width=10) == (
        "[#####.....]  50/100  50%      25.0 rec/s  errors 1"
    )
    assert progress_line(0, 0, 0.0, width=4).startswith("[####] 0/0 100%")
    assert summary_line("payments", 100, 0, 4.0) == (
        "100 records acknowledged by Kafka on payments in 4.00s (25.0 rec/s), 0 errors"
    )
