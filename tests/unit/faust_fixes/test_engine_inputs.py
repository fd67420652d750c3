from app.faust_fixes.engine_inputs import next_commit


def test_what_the_engine_finished_past_the_commit_is_committed():
    assert next_commit(10, 5) == 10


def test_nothing_new_nothing_to_commit():
    assert next_commit(5, 5) is None
    assert next_commit(4, 5) is None  # a late mark of an older batch
    assert next_commit(None, 5) is None


def test_a_partition_without_a_commit_commits_what_is_done():
    assert next_commit(3, None) == 3
