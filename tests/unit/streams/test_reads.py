"""The engine's reads: forwards as they are read, the hop's inputs, bounds and done offsets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from app.domain.hops import BOUNDS_HEADER, decode_bounds, encode_bounds, read_headers
from app.domain.ordering import PAYMENT_RANK, Merge
from app.streams.hops import Input, Reads
from app.streams.items import Item, read_payment
from app.topics import TopicNames

NAMES = TopicNames("app", "tokens", "payments", "dlq", "undeliverable")
PAY = [TopicPartition("payments", p) for p in range(4)]
CANONICAL = [TopicPartition(NAMES.payments_canonical, p) for p in range(4)]


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def payment(tp: TopicPartition, offset: int, at: int, user: str) -> Record:
    body = {"payment_id": f"p{offset}", "user_id": user, "status": "succeeded"}
    body |= {"amount": "1", "currency": "RUB"}
    return Record(tp.topic, tp.partition, offset, at, json.dumps(body).encode())


def keep(tp: TopicPartition, item: Item) -> None:
    """Leave a record's route as the test set it."""


def worker_of_0_and_1() -> tuple[Reads, Merge[Input, Item]]:
    """A worker reading payments partitions 0 and 1 and owning canonical 0 and 1, of 4."""
    reads = Reads(NAMES, 4, skip_local_hops=True)
    merge: Merge[Input, Item] = Merge(0, bound_wait_ms=1_000)
    inputs, bounds = reads.plan(
        [PAY[0], PAY[1], CANONICAL[0], CANONICAL[1]], [0, 1], {"payments": 4}, wait=True
    )
    merge.assign(inputs, 0, bounds)
    return reads, merge


def rows(records: list[Record], hops: dict[int, int]) -> list[tuple[int, int, Item]]:
    """Parsed records; ``hops`` maps an offset to the partition it is forwarded to."""
    out = []
    for record in records:
        ms, rank, item = read_payment(record, 1 << 20)
        item.hop = hops.get(record.offset)
        out.append((ms, rank, item))
    return out


def test_an_assignment_waits_for_the_sources_other_workers_read():
    reads, _ = worker_of_0_and_1()
    split = reads.inputs_of(CANONICAL[0])
    assert {k.source for k in split} == {-1, 2, 3}  # unknown origin, and partitions 2 and 3


def test_records_for_another_worker_are_forwarded_when_read_with_their_place():
    reads, merge = worker_of_0_and_1()
    read = [payment(PAY[0], 0, 50, "u"), payment(PAY[0], 1, 10, "v"), payment(PAY[0], 2, 60, "w")]
    here = reads.read(PAY[0], rows(read, hops={1: 3}), keep)
    assert [item.record.offset for _, _, item in here] == [0, 2]
    merge.add(Input(PAY[0]), here)
    snapshot = reads.snapshot(merge, lambda key: False, 0.0, 0)
    [(target, _, _, timestamp, headers)] = snapshot.forwards
    assert target == TopicPartition(NAMES.payments_canonical, 3) and timestamp == 10
    # Read after a record of 50: it takes that place.
    assert read_headers(headers) == (False, 0, (50, PAYMENT_RANK))
    # Nothing processed yet: done up to the first buffered record.
    assert snapshot.done[PAY[0]] == 0
    # Bounds go to the other worker's partitions only; caught up: nothing to wait for.
    assert {tp.partition for tp, _, _ in snapshot.bounds} == {2, 3}
    assert all(decode_bounds(value) == {0: None, 1: None} for _, value, _ in snapshot.bounds)
    assert reads.snapshot(merge, lambda key: False, 0.5, 0).forwards == []


def test_the_bound_of_a_source_with_lag_is_its_last_place_read():
    reads, merge = worker_of_0_and_1()
    reads.read(PAY[1], rows([payment(PAY[1], 0, 70, "u")], hops={0: 2}), keep)
    snapshot = reads.snapshot(merge, lambda key: key.tp == PAY[1], 0.0, 0)
    bounds = {tp.partition: b for tp, _, b in snapshot.bounds}
    assert bounds[2] == {0: None, 1: (70, PAYMENT_RANK)}
    assert snapshot.done[PAY[1]] == 1  # forwarded: done once the write is in Kafka
    # Unchanged bounds are written again only after a second.
    assert reads.snapshot(merge, lambda key: key.tp == PAY[1], 0.5, 0).bounds
    reads.wrote(snapshot, 0.0)
    assert not reads.snapshot(merge, lambda key: key.tp == PAY[1], 0.5, 0).bounds
    assert reads.snapshot(merge, lambda key: key.tp == PAY[1], 1.0, 0).bounds


def test_a_canonical_partition_is_split_by_source_and_its_bounds_applied():
    reads, merge = worker_of_0_and_1()
    forwarded = payment(CANONICAL[0], 0, 10, "u")
    forwarded.headers = [("pushes-source", b"2"), ("pushes-order", b"40,1")]
    bounds = Record(CANONICAL[0].topic, 0, 1, 0, encode_bounds({2: (45, 1), 3: None}))
    bounds.headers = [(BOUNDS_HEADER, b"1")]
    old = payment(CANONICAL[0], 2, 5, "v")  # forwarded before the headers existed
    local = payment(PAY[0], 0, 50, "w")
    merge.add(Input(PAY[0]), reads.read(PAY[0], rows([local], hops={}), keep))
    reads.split(
        CANONICAL[0], [forwarded, bounds, old], read_payment, 1 << 20, merge, 0, lambda tp, i: None
    )
    # Partition 1 of the other worker has sent nothing yet: nothing goes.
    assert merge.take(10, lambda key: False, 0) == []
    merge.bound(Input(CANONICAL[1], 2), None, 0)
    merge.bound(Input(CANONICAL[1], 3), None, 0)
    taken = merge.take(10, lambda key: False, 0)
    # The old record first (its own time), the forwarded one at its place,
    # then the local one: past source 2's bound of 45, so it waits.
    assert [(k.source, place) for k, place, _ in taken] == [(-1, (5, 1)), (2, (40, 1))]
    merge.bound(Input(CANONICAL[0], 2), (60, 1), 0)
    assert [k.tp for k, _, _ in merge.take(10, lambda key: False, 0)] == [PAY[0]]
    done = reads.snapshot(merge, lambda key: False, 0.0, 0).done
    assert done[CANONICAL[0]] == 3 and done[PAY[0]] == 1


def test_one_worker_writes_no_bounds_and_waits_for_none():
    reads = Reads(NAMES, 2, skip_local_hops=True)
    _, bounds = reads.plan(
        [TopicPartition("payments", 0), TopicPartition("payments", 1)]
        + [TopicPartition(NAMES.payments_canonical, p) for p in range(2)],
        [0, 1],
        {"payments": 2},
        wait=True,
    )
    assert bounds == {}
    assert reads.snapshot(Merge(), lambda key: False, 0.0, 0).bounds == []
