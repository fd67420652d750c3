from app.config import Settings
from app.kafka.admin import partition_problems, required_topics


def test_required_topics_cover_sources_canonical_topics_and_changelog():
    names = [t.name for t in required_topics(Settings())]
    assert names == [
        "push-tokens",
        "payments",
        "pushes-tokens-canonical",
        "pushes-payments-canonical",
        "pushes-tokens-changelog",
        "pushes-sent-changelog",
        "pushes-pending-changelog",
        "pushes-retries-changelog",
        "pushes-dead-letters",
        "pushes-undeliverable",
    ]


def test_sources_may_have_any_partition_count():
    specs = required_topics(Settings())
    counts = {t.name: 8 for t in specs} | {"payments": 32, "push-tokens": 3}
    assert partition_problems(specs, counts) == []


def test_a_changelog_with_another_count_is_named_with_both_counts():
    specs = required_topics(Settings())
    counts = {t.name: 8 for t in specs} | {"pushes-tokens-changelog": 4}
    assert partition_problems(specs, counts) == [
        "topic 'pushes-tokens-changelog' has 4 partitions but the tokens table has 8 "
        "(PUSHES_PARTITIONS); they must be equal"
    ]


def test_missing_topics_are_reported():
    specs = required_topics(Settings())
    assert partition_problems(specs, {}) == [f"topic {t.name!r} does not exist" for t in specs]
