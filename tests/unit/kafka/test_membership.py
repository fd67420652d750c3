import asyncio

import pytest

from app.kafka.membership import UNKNOWN_MEMBER_ID, GroupWatch


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Coordinator:
    """The attributes of aiokafka's GroupCoordinator the watch reads (aiokafka 0.14.0)."""

    def __init__(self, answers: list[bool]) -> None:
        self.coordinator_id: int | None = 1
        self.member_id = "member-1"
        self.generation = 3
        self._rejoin_needed_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.answers = answers
        self.heartbeats = 0

    async def _do_heartbeat(self) -> bool:
        self.heartbeats += 1
        return self.answers.pop(0)


class AiokafkaConsumer:
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator


async def test_an_answered_heartbeat_confirms_the_membership_a_failed_one_does_not():
    clock = Clock()
    watch = GroupWatch(clock)
    coordinator = Coordinator([True, False])
    watch.attach(AiokafkaConsumer(coordinator))
    clock.now += 3
    assert watch.silence() == 3.0  # counted from the attach
    assert await coordinator._do_heartbeat() is True
    clock.now += 5
    assert await coordinator._do_heartbeat() is False
    assert watch.silence() == 5.0
    assert coordinator.heartbeats == 2


async def test_a_coordinator_is_wrapped_once_and_a_new_one_again():
    watch = GroupWatch(Clock())
    first = Coordinator([True])
    consumer = AiokafkaConsumer(first)
    watch.attach(consumer)
    watch.attach(consumer)
    await first._do_heartbeat()
    assert first.heartbeats == 1
    second = Coordinator([False])
    watch.attach(AiokafkaConsumer(second))
    await second._do_heartbeat()
    assert second.heartbeats == 1
    second.coordinator_id = None  # the state read is the new coordinator's
    assert not watch.in_group()


async def test_a_join_confirms_too():
    clock = Clock()
    watch = GroupWatch(clock)
    watch.attach(AiokafkaConsumer(Coordinator([])))
    clock.now += 20
    watch.confirm()
    assert watch.silence() == 0.0


@pytest.mark.parametrize(
    "lose",
    [
        lambda c: setattr(c, "coordinator_id", None),
        lambda c: setattr(c, "member_id", UNKNOWN_MEMBER_ID),
        lambda c: setattr(c, "generation", -1),
        lambda c: c._rejoin_needed_fut.set_result(None),
    ],
    ids=["coordinator lost", "member forgotten", "no generation", "rejoin requested"],
)
async def test_the_consumer_is_in_its_group_until_it_loses_any_part_of_it(lose):
    watch = GroupWatch(Clock())
    coordinator = Coordinator([])
    watch.attach(AiokafkaConsumer(coordinator))
    assert watch.in_group()
    lose(coordinator)
    assert not watch.in_group()


def test_before_the_first_attach_nothing_is_known_to_be_wrong():
    watch = GroupWatch(Clock())
    assert watch.in_group() and watch.silence() is None
    watch.attach(object())  # no coordinator yet: ignored
    assert watch.in_group() and watch.silence() is None
