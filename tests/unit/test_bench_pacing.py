"""The paced producer's wait between two records: it must not spin below a millisecond."""

from __future__ import annotations

from bench.kafka import wait


def test_a_wait_under_a_millisecond_sleeps_and_a_longer_one_serves_delivery_reports():
    calls: list[tuple[str, float]] = []

    def poll(seconds: float) -> int:
        calls.append(("poll", seconds))
        return 0

    def sleep(seconds: float) -> None:
        calls.append(("sleep", seconds))

    wait(0.0004, poll, sleep)  # poll(0.0004) would be poll(0 ms): back at once, a spin
    wait(0.0025, poll, sleep)
    assert calls == [("sleep", 0.0004), ("poll", 0.0025)]
