"""The record cache in front of a table partition."""

import orjson
import pytest

from tables.cache import CachedTable


def backed(**stored: object):
    reads: list[bytes] = []
    data = {k.encode(): orjson.dumps(v) for k, v in stored.items()}

    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return data.get(key)

    return CachedTable(read), reads


def test_reads_go_to_the_store_once_and_see_the_batch_writes():
    table, reads = backed(a={"x": 1})
    assert table.get(b"a") == {"x": 1}
    assert table.get(b"missing") is None and b"missing" not in table
    table.get(b"a")
    table.get(b"missing")
    assert reads == [b"a", b"missing"]
    table[b"a"] = {"x": 2}
    assert table[b"a"] == {"x": 2}


def test_a_key_written_many_times_is_written_once_with_its_last_value():
    table, _ = backed(gone=[1])
    for i in range(5):
        table[b"k"] = i
    del table[b"gone"]
    assert table.writes() == [(b"gone", None), (b"k", b"4")]
    assert b"gone" not in table
    with pytest.raises(KeyError):
        del table[b"gone"]


def test_clear_forgets_the_batch():
    table, reads = backed(a=1)
    table[b"a"] = 2
    table.clear()
    assert table.writes() == []
    assert table.get(b"a") == 1 and reads == [b"a"]


def test_a_table_that_knows_its_keys_reads_only_those():
    reads: list[bytes] = []
    data = {b"a": orjson.dumps(1)}

    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return data.get(key)

    keys = {b"a"}
    table = CachedTable(read, keys=keys)
    assert table.get(b"zzz") is None and reads == []
    assert table.get(b"a") == 1 and reads == [b"a"]
    table[b"new"] = 2
    del table[b"a"]
    assert keys == {b"new"}  # kept in step with the writes
    table.clear()
    assert b"a" not in table and reads == [b"a"]
