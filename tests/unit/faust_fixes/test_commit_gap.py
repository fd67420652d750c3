from app.faust_fixes.commit_gap import committable_run


def test_a_run_starting_at_the_committed_offset_is_committed():
    assert committable_run([5, 6, 7, 9], 5) == [5, 6, 7]


def test_a_single_missing_record_at_the_head_blocks_the_commit():
    # Faust 0.15.3 commits [6, 7] here, losing record 5.
    assert committable_run([6, 7], 5) is None


def test_offset_zero_is_checked_too():
    assert committable_run([1, 2], 0) is None
    assert committable_run([0, 1], 0) == [0, 1]


def test_without_a_commit_the_first_run_is_committed():
    assert committable_run([3, 4, 6], None) == [3, 4]


def test_nothing_acked_nothing_to_commit():
    assert committable_run([], 5) is None
