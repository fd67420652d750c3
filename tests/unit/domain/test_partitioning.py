import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

from app.domain.partitioning import canonical_partition, hop_target, user_key


@pytest.mark.parametrize(
    ("data", "java_value"),
    [
        # org.apache.kafka.common.utils.UtilsTest#testMurmur2
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_hash_is_the_java_clients_murmur2(data, java_value):
    assert murmur2(data) == java_value & 0xFFFFFFFF


@pytest.mark.parametrize("user_id", ["42", "u-1", "ünïcode", "x" * 256])
@pytest.mark.parametrize("partitions", [1, 3, 8, 16])
def test_canonical_partition_is_the_default_partitioners_choice(user_id, partitions):
    expected = DefaultPartitioner()(user_key(user_id), list(range(partitions)), [])
    assert canonical_partition(user_id, partitions) == expected


def test_record_on_its_partition_of_a_copartitioned_topic_stays():
    home = canonical_partition("42", 8)
    assert hop_target("42", partition=home, source_partitions=8, table_partitions=8) is None


def test_record_on_another_partition_hops_home():
    home = canonical_partition("42", 8)
    elsewhere = (home + 1) % 8
    assert hop_target("42", partition=elsewhere, source_partitions=8, table_partitions=8) == home


def test_topic_with_another_partition_count_always_hops():
    # Even a record on the "right" number: Faust assigns partition N of a topic
    # with another partition count independently of the table's partition N.
    home = canonical_partition("42", 8)
    assert hop_target("42", partition=home, source_partitions=16, table_partitions=8) == home


def test_murmur2_is_kafkas():
    import random

    from aiokafka.partitioner import murmur2 as aiokafka_murmur2

    from app.domain.partitioning import murmur2

    rng = random.Random(7)
    for length in range(40):
        for _ in range(20):
            data = rng.randbytes(length)
            assert murmur2(data) == aiokafka_murmur2(data)
