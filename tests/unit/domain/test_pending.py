from app.domain.pending import add_pending, split_due


def test_payments_wait_in_arrival_order():
    entries, dropped = add_pending(None, {"payment_id": "a"}, 10, 3)
    entries, dropped = add_pending(entries, {"payment_id": "b"}, 5, 3)
    assert [e["payment"]["payment_id"] for e in entries] == ["a", "b"]
    assert dropped == []


def test_over_the_bound_the_oldest_arrival_is_dropped():
    entries = None
    for name in "abc":
        entries, _ = add_pending(entries, {"payment_id": name}, 0, 2)
    assert [e["payment"]["payment_id"] for e in entries] == ["b", "c"]


def test_dropped_entries_are_returned_for_reporting():
    entries, _ = add_pending(None, {"payment_id": "a"}, 0, 1)
    _, dropped = add_pending(entries, {"payment_id": "b"}, 0, 1)
    assert [e["payment"]["payment_id"] for e in dropped] == ["a"]


def test_split_due_by_grace():
    entries = [{"payment": {}, "event_time": 0}, {"payment": {}, "event_time": 500}]
    waiting, gone = split_due(entries, 1200, 1000)
    assert [e["event_time"] for e in waiting] == [500]
    assert [e["event_time"] for e in gone] == [0]
