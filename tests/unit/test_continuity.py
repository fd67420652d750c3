from app.continuity import SkippedRecords


def test_the_first_skipped_offset_of_each_partition_is_kept():
    skipped = SkippedRecords()
    for tp, offset in [("a", 7), ("a", 5), ("a", 9), ("b", 3)]:
        skipped.note(tp, offset)
    assert skipped.take({"a", "b"}) == {"a": 5, "b": 3}


def test_partitions_no_longer_owned_are_dropped():
    skipped = SkippedRecords()
    skipped.note("a", 1)
    skipped.note("gone", 2)
    assert skipped.take({"a"}) == {"a": 1}


def test_take_forgets():
    skipped = SkippedRecords()
    skipped.note("a", 1)
    skipped.take({"a"})
    assert skipped.take({"a"}) == {}
