"""Where a user's records live, and whether a record must move there first.

A Faust rocksdb table read inside an agent only looks in the database of the
*current event's partition*.  So a payment finds its user's tokens only when
both were processed on the same partition number.  We make that true by one
canonical partitioning for both streams: Kafka's default partitioner
(murmur2 of the normalised user id as UTF-8, as the Java client and aiokafka
compute it) over the table's partition count.  It is also what Faust's
``table_route`` uses to find the worker that owns a key.
"""

from __future__ import annotations

from functools import lru_cache

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash (``org.apache.kafka.common.utils.Utils.murmur2``), unsigned.

    Written out here so that the domain needs no Kafka client; the unit tests
    check it against aiokafka's.
    """
    length = len(data)
    h = (_SEED ^ length) & _MASK
    full = length & ~3
    for i in range(0, full, 4):
        k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24)
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra >= 3:
        h ^= data[full + 2] << 16
    if extra >= 2:
        h ^= data[full + 1] << 8
    if extra >= 1:
        h ^= data[full]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def user_key(user_id: str) -> bytes:
    """The Kafka key of a user's records: the normalised user id, UTF-8."""
    return user_id.encode("utf-8")


@lru_cache(maxsize=65_536)
def canonical_partition(user_id: str, partitions: int) -> int:
    """The partition that owns ``user_id`` among ``partitions``."""
    return (murmur2(user_key(user_id)) & 0x7FFFFFFF) % partitions


def hop_target(
    user_id: str, *, partition: int, source_partitions: int, table_partitions: int
) -> int | None:
    """The canonical partition to forward a record to, or ``None`` to keep it here.

    A record may skip the hop only if its topic is partitioned exactly like the
    table: same partition count (so Faust's assignor gives partition N of both
    to the same worker) and it already sits on its user's partition.
    """
    target = canonical_partition(user_id, table_partitions)
    if source_partitions == table_partitions and partition == target:
        return None
    return target
