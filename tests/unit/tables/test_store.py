"""The pure parts of the bulk restore: where to start, and what a batch writes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tables.store import fill_batch, restore_start

OFFSET_KEY = b"__faust\x00offset__"


@dataclass
class Record:
    offset: int
    key: bytes | None
    value: bytes | None


class Recorder:
    def __init__(self) -> None:
        self.writes: list[tuple[str, bytes, bytes | None]] = []

    def put(self, key: bytes, value: bytes) -> None:
        self.writes.append(("put", key, value))

    def delete(self, key: bytes) -> None:
        self.writes.append(("delete", key, None))


@pytest.mark.parametrize(
    ("persisted", "beginning", "end", "start"),
    [
        (None, 0, 10, 0),  # empty database: everything
        (None, 4, 10, 4),  # ...from the first offset the broker still has
        (3, 0, 10, 4),  # the record after the last one applied
        (1, 4, 10, 4),  # records the broker no longer has are not waited for
        (9, 0, 10, None),  # up to date
        (None, 0, 0, None),  # empty changelog
        (12, 0, 10, None),  # ahead of the broker: Faust's recovery reports it
    ],
)
def test_restore_start(persisted: int | None, beginning: int, end: int, start: int | None):
    assert restore_start(persisted, beginning, end) == start


def test_a_batch_writes_values_deletes_tombstones_and_then_the_offset():
    batch = Recorder()
    records = [
        Record(5, b"a", b"1"),
        Record(6, b"b", None),
        Record(7, None, b"x"),
        Record(9, b"a", b"2"),
    ]

    assert fill_batch(batch, records, OFFSET_KEY) == 9
    assert batch.writes == [
        ("put", b"a", b"1"),
        ("delete", b"b", None),
        ("put", b"a", b"2"),
        ("put", OFFSET_KEY, b"9"),
    ]


def test_the_offset_key_is_fausts_own():
    from faust.stores.rocksdb import Store

    assert Store.offset_key == OFFSET_KEY
