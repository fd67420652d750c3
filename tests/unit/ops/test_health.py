from types import SimpleNamespace

from faust.types import TP
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.faust_fixes.commit_clock import CommitTimes
from app.kafka.membership import GroupWatch
from app.kafka.probe import BrokerProbe
from app.ops.health import Health, seconds_since_ms
from app.ops.readiness import StartupFlags, not_ready_reason

INPUTS = [TP("payments", 0), TP("payments", 1)]
CHANGELOG = TP("pushes-tokens-changelog", 0)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fake_app(commit_times: CommitTimes, last_response_ms: float | None, assigned=INPUTS):
    startup = StartupFlags()
    startup.checked_topics = frozenset({"payments"})
    startup.joined_group = True
    return SimpleNamespace(
        startup=startup,
        tables=SimpleNamespace(
            recovery=SimpleNamespace(completed=SimpleNamespace(is_set=lambda: True))
        ),
        rebalancing=False,
        should_stop=False,
        engine=SimpleNamespace(
            topics=frozenset({"payments"}),
            intake=SimpleNamespace(last_response_ms=lambda: last_response_ms),
        ),
        consumer=SimpleNamespace(
            assignment=lambda: set(assigned) | {CHANGELOG}, commit_times=commit_times
        ),
    )


def scrape(health: Health) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(health)
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def health_at(monotonic: Clock, wall_ms: float, app, unreachable_after: float = 10.0):
    probe = BrokerProbe(Settings(), clock=monotonic)
    watch = GroupWatch(monotonic)
    health = Health(
        app,
        probe,
        watch,
        unreachable_after=unreachable_after,
        wall_ms=lambda: wall_ms,
        monotonic=monotonic,
    )
    return health, probe, watch


def test_a_healthy_worker_is_ready_and_reachable_with_its_fetch_and_commit_ages():
    clock = Clock(1000.0)
    times = CommitTimes()
    times.on_assigned(INPUTS, now=900.0)
    times.on_committed([INPUTS[0]], now=990.0)
    health, probe, watch = health_at(clock, 5_000_000.0, fake_app(times, 4_998_500.0))
    probe.contact.answered()
    watch.confirm()
    values = scrape(health)
    assert values[("pushes_ready", ())] == 1
    assert values[("pushes_broker_reachable", ())] == 1
    assert values[("pushes_seconds_since_last_fetch", ())] == 1.5
    since = "pushes_seconds_since_last_commit"
    assert values[(since, (("partition", "0"), ("topic", "payments")))] == 10.0
    assert values[(since, (("partition", "1"), ("topic", "payments")))] == 100.0
    # Changelogs are not committed by the group: no series for them.
    assert not [k for k in values if k[0] == since and ("topic", CHANGELOG.topic) in k[1]]


def test_a_silent_broker_turns_readiness_and_reachability_off():
    clock = Clock(1000.0)
    health, probe, watch = health_at(clock, 0.0, fake_app(CommitTimes(), None))
    probe.contact.answered()
    watch.confirm()
    clock.now += 10
    watch.confirm()  # the coordinator answering is not the probe answering
    values = scrape(health)
    assert values[("pushes_ready", ())] == 0
    assert values[("pushes_broker_reachable", ())] == 0
    assert "Kafka broker" in not_ready_reason(health.readiness())


def test_a_membership_not_confirmed_since_the_threshold_is_not_ready_though_reachable():
    clock = Clock(1000.0)
    health, probe, watch = health_at(clock, 0.0, fake_app(CommitTimes(), None))
    watch.confirm()
    clock.now += 12
    probe.contact.answered()
    values = scrape(health)
    assert values[("pushes_broker_reachable", ())] == 1
    assert values[("pushes_ready", ())] == 0
    assert "membership" in not_ready_reason(health.readiness())


def test_no_fetch_age_without_a_fetch_or_without_input_partitions():
    clock = Clock(1000.0)
    never, _, _ = health_at(clock, 0.0, fake_app(CommitTimes(), None))
    assert ("pushes_seconds_since_last_fetch", ()) not in scrape(never)
    idle, _, _ = health_at(clock, 0.0, fake_app(CommitTimes(), 0.0, assigned=[]))
    assert ("pushes_seconds_since_last_fetch", ()) not in scrape(idle)


def test_seconds_since_a_wall_time_in_milliseconds():
    assert seconds_since_ms(1_000.0, 3_500.0) == 2.5
    assert seconds_since_ms(None, 3_500.0) is None
    assert seconds_since_ms(4_000.0, 3_500.0) == 0.0  # a clock step back is no negative age


def test_a_blocked_sender_is_in_the_readiness_too():
    clock = Clock(1000.0)
    app = fake_app(CommitTimes(), None)
    health = Health(
        app,
        BrokerProbe(Settings(), clock=clock),
        GroupWatch(clock),
        unreachable_after=10.0,
        sender_blocked=lambda: "SENDER_ID_MISMATCH",
    )
    assert "misconfigured (SENDER_ID_MISMATCH)" in not_ready_reason(health.readiness())
    assert scrape(health)[("pushes_ready", ())] == 0
