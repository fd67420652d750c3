from app.faust_fixes.skipped_records import OffsetTracker


def tracker(committed=None):
    return OffsetTracker(lambda tp: (committed or {}).get(tp))


def test_contiguous_offsets_have_no_hole():
    t = tracker({"tp": 5})
    assert [t.hole_before("tp", o) for o in (5, 6, 7)] == [None, None, None]


def test_a_hole_in_the_stream_is_reported():
    t = tracker()
    t.hole_before("tp", 10)
    assert t.hole_before("tp", 14) == (11, 14)
    assert t.hole_before("tp", 15) is None


def test_the_first_record_is_checked_against_the_committed_offset():
    t = tracker({"tp": 959})
    assert t.hole_before("tp", 979) == (959, 979)


def test_without_a_commit_the_first_record_is_taken_as_is():
    assert tracker().hole_before("tp", 100) is None


def test_a_rewind_is_not_a_hole():
    t = tracker()
    t.hole_before("tp", 10)
    assert t.hole_before("tp", 3) is None
    assert t.hole_before("tp", 4) is None


def test_reset_starts_again_from_the_committed_offset():
    t = tracker({"tp": 20})
    t.hole_before("tp", 20)
    t.reset()
    assert t.hole_before("tp", 25) == (20, 25)
