import asyncio
import time

from app.config import Settings
from app.kafka.intake import Intake


async def test_a_fetch_of_no_partition_waits_its_timeout_and_lets_others_run():
    intake = Intake(Settings())  # never started: no partition means no broker needed
    ticks = 0

    async def other() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(other())
    started = time.monotonic()
    for _ in range(5):  # the engine's loop on an empty assignment
        assert await intake.fetch([], 20, 100) == {}
    elapsed = time.monotonic() - started
    task.cancel()
    assert elapsed >= 0.1
    assert ticks >= 5
