"""The merge of the join's inputs: timestamp order across inputs, and when to wait."""

import pytest

from app.domain.ordering import NEVER_WAIT, PAYMENT_RANK, TOKEN_RANK, UNKNOWN, Merge


def merge(max_idle_ms: int = 0) -> Merge[str, str]:
    m: Merge[str, str] = Merge(max_idle_ms)
    m.assign(["tokens", "payments"], now_ms=0)
    return m


def no_lag(_: str) -> bool:
    return False


def test_the_smallest_head_goes_first_and_tokens_win_ties():
    m = merge()
    m.add("payments", [(10, PAYMENT_RANK, "p10"), (20, PAYMENT_RANK, "p20")])
    m.add("tokens", [(5, TOKEN_RANK, "t5"), (20, TOKEN_RANK, "t20"), (30, TOKEN_RANK, "t30")])
    taken = m.take(10, no_lag, now_ms=0)
    assert [item for _, _, item in taken] == ["t5", "p10", "t20", "p20", "t30"]


def test_an_input_keeps_its_offset_order_whatever_its_timestamps():
    m = merge()
    m.add("tokens", [(50, TOKEN_RANK, "late-first"), (10, TOKEN_RANK, "early-second")])
    m.add("payments", [(20, PAYMENT_RANK, "p20")])
    assert [item for _, _, item in m.take(10, no_lag, 0)] == ["p20", "late-first", "early-second"]


def test_an_empty_input_with_lag_is_waited_for():
    m = merge()
    m.add("payments", [(10, PAYMENT_RANK, "p10")])
    assert m.take(10, lambda key: key == "tokens", 0) == []
    m.add("tokens", [(5, TOKEN_RANK, "t5")])
    # Once tokens' buffer is empty again with lag left, taking stops there.
    assert [item for _, _, item in m.take(10, lambda key: key == "tokens", 0)] == ["t5"]
    assert [item for _, _, item in m.take(10, no_lag, 0)] == ["p10"]


def test_never_wait_ignores_lag():
    m = merge(NEVER_WAIT)
    m.add("payments", [(10, PAYMENT_RANK, "p10")])
    assert [item for _, _, item in m.take(10, lambda key: True, 0)] == ["p10"]


def test_a_positive_idle_time_waits_for_an_input_without_lag_that_long():
    m = merge(max_idle_ms=100)
    m.add("payments", [(10, PAYMENT_RANK, "p10")])
    assert m.take(10, no_lag, now_ms=50) == []
    assert m.wait_ms(no_lag, now_ms=50) == pytest.approx(50)
    assert [item for _, _, item in m.take(10, no_lag, now_ms=100)] == ["p10"]


def test_limit_and_counts():
    m = merge()
    m.add("payments", [(i, PAYMENT_RANK, f"p{i}") for i in range(5)])
    assert len(m.take(3, no_lag, 0)) == 3
    assert m.buffered("payments") == 2 and len(m) == 2
    m.assign(["tokens"], 0)
    assert len(m) == 0 and m.inputs == ["tokens"]


def test_a_negative_idle_below_never_is_refused():
    with pytest.raises(ValueError):
        Merge(-2)


def test_a_late_record_takes_the_place_of_the_one_before_it():
    m = merge()
    m.add("tokens", [(50, TOKEN_RANK, "late-first"), (10, TOKEN_RANK, "early-second")])
    m.add("payments", [(20, PAYMENT_RANK, "p20"), (60, PAYMENT_RANK, "p60")])
    places = [(item, place) for _, place, item in m.take(10, no_lag, 0)]
    assert places == [
        ("p20", (20, PAYMENT_RANK)),
        ("late-first", (50, TOKEN_RANK)),
        ("early-second", (50, TOKEN_RANK)),
        ("p60", (60, PAYMENT_RANK)),
    ]


def bounded(wait_ms: int = 1_000) -> Merge[str, str]:
    m: Merge[str, str] = Merge(0, bound_wait_ms=wait_ms)
    m.assign(["local", "hop"], now_ms=0, bounds={"hop": UNKNOWN})
    return m


def test_nothing_goes_before_the_first_news_of_a_bounded_input():
    m = bounded()
    m.add("local", [(10, PAYMENT_RANK, "p10")])
    assert m.take(10, no_lag, 0) == []
    m.bound("hop", (30, TOKEN_RANK), now_ms=5)
    m.add("local", [(30, TOKEN_RANK, "t30-local"), (40, PAYMENT_RANK, "p40")])
    # Below the bound, and at it (a record goes before a bound of the same place).
    assert [item for _, _, item in m.take(10, no_lag, 5)] == ["p10", "t30-local"]
    m.add("hop", [(35, TOKEN_RANK, "t35-hop")], now_ms=6)
    assert [item for _, _, item in m.take(10, no_lag, 6)] == ["t35-hop"]
    # Emptied again: its last bound, raised to what it gave, holds.
    assert m.take(10, no_lag, 7) == []
    m.bound("hop", None, now_ms=8)  # caught up: nothing to wait for
    assert [item for _, _, item in m.take(10, no_lag, 8)] == ["p40"]


def test_a_bounded_input_without_news_is_given_up_after_the_wait():
    m = bounded(wait_ms=100)
    m.add("local", [(10, PAYMENT_RANK, "p10")])
    assert m.take(10, no_lag, 99) == [] and m.bounds_given_up == 0
    assert [item for _, _, item in m.take(10, no_lag, 100)] == ["p10"]
    assert m.bounds_given_up == 1
    # News brings the wait back.
    m.bound("hop", (5, TOKEN_RANK), now_ms=200)
    m.add("local", [(20, PAYMENT_RANK, "p20")])
    assert m.take(10, no_lag, 200) == []


def test_records_of_an_input_not_assigned_are_taken_in_their_turn():
    m = merge()
    m.add("payments", [(20, PAYMENT_RANK, "p20")])
    m.add("leftover", [(10, TOKEN_RANK, "t10")], now_ms=0)
    assert [item for _, _, item in m.take(10, no_lag, 0)] == ["t10", "p20"]
