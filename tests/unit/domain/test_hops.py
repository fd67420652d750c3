"""The hop's bounds: headers and values, and who waits for whom."""

import pytest

from app.domain.hops import (
    BOUNDS_HEADER,
    bound_targets,
    decode_bounds,
    encode_bounds,
    expected_sources,
    forward_headers,
    read_headers,
)
from app.domain.ordering import PAYMENT_RANK, TOKEN_RANK


def test_a_forwarded_record_carries_its_source_and_place():
    headers = forward_headers(3, (1_700_000_000_123, PAYMENT_RANK))
    assert read_headers(headers) == (False, 3, (1_700_000_000_123, PAYMENT_RANK))
    assert read_headers(None) == (False, None, None)  # forwarded before the headers
    assert read_headers([(BOUNDS_HEADER, b"1")]) == (True, None, None)


def test_bounds_survive_their_encoding():
    bounds = {0: (5, TOKEN_RANK), 2: None, 6: (-(1 << 62), TOKEN_RANK)}
    assert decode_bounds(encode_bounds(bounds)) == bounds


@pytest.mark.parametrize("value", [None, b"", b"[]", b'{"bounds": {"x": [1, 0]}}', b'{"b": 1}'])
def test_a_malformed_bounds_record_is_refused(value):
    with pytest.raises(ValueError):
        decode_bounds(value)


def test_two_workers_wait_for_each_others_sources_only():
    # Worker A reads partitions 0-3 of 8, B the rest.
    assert expected_sources(1, 8, {0, 1, 2, 3}, skip_local_hops=True) == [4, 5, 6, 7]
    assert bound_targets(8, {0, 1, 2, 3}, skip_local_hops=True) == [4, 5, 6, 7]
    # One worker: nothing to wait for, nowhere to write bounds.
    assert expected_sources(1, 8, set(range(8)), skip_local_hops=True) == []
    assert bound_targets(8, set(range(8)), skip_local_hops=True) == []


def test_without_local_skips_a_worker_waits_for_its_own_other_sources_too():
    assert expected_sources(1, 4, {0, 1}, skip_local_hops=False) == [0, 2, 3]
    assert bound_targets(4, {0, 1}, skip_local_hops=False) == [0, 1, 2, 3]


def test_a_public_topic_with_more_partitions_than_the_table():
    assert expected_sources(0, 12, {0, 1, 2}, skip_local_hops=True) == list(range(3, 12))
