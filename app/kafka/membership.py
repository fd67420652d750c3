"""Is the worker still a member of its consumer group?  Read off the group member's coordinator.

After a broker outage the broker answering is not enough for readiness: the
group may have forgotten this member, and its partitions are then nobody's
until the consumer has joined again.  aiokafka knows, but tells nobody:

- its group coordinator object holds the coordinator's node id (``None`` once
  a request to it failed), the member id and generation, and a future set
  when the consumer must rejoin;
- its heartbeat task sends a heartbeat every ``heartbeat_interval`` and
  learns from the answer whether the member is still known.

:class:`GroupWatch` reads the first and counts every answered heartbeat as a
confirmation of the membership (as is every completed join, which the app
reports with :meth:`GroupWatch.confirm`), in a
:class:`~app.ops.readiness.Contact`.  aiokafka keeps these in private
attributes (checked against aiokafka 0.14.0); a version without them makes
the watch report nothing rather than fail.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.ops.readiness import Contact

#: aiokafka's member id before a join (``JoinGroupRequest.UNKNOWN_MEMBER_ID``).
UNKNOWN_MEMBER_ID = ""


class GroupWatch:
    """When the group coordinator last confirmed this member, and whether it still is one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: A heartbeat answered, or a join completed.
        self.contact = Contact(clock)
        self._watched: Any = None

    def confirm(self) -> None:
        """The coordinator took this member in just now (a join or a heartbeat)."""
        self.contact.answered()

    def attach(self, consumer: Any) -> None:
        """Count the answered heartbeats of ``consumer``'s coordinator (an ``AIOKafkaConsumer``).

        Idempotent: a coordinator is wrapped once, a new one (a restarted
        consumer) again.
        """
        coordinator = getattr(consumer, "_coordinator", None)
        heartbeat = getattr(coordinator, "_do_heartbeat", None)
        if coordinator is None or coordinator is self._watched or heartbeat is None:
            return
        coordinator._do_heartbeat = self._counting(heartbeat)
        self._watched = coordinator
        self.contact.start()

    def _counting(self, heartbeat: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
        async def counted() -> bool:
            # True: the coordinator answered and knows this member (a
            # rebalance in progress included: aiokafka then requests a rejoin).
            ok = await heartbeat()
            if ok:
                self.confirm()
            return ok

        return counted

    def in_group(self) -> bool:
        """Coordinator known, a member id and generation, and no rejoin pending.

        ``True`` before :meth:`attach`: nothing is known to be wrong then.
        """
        coordinator = self._watched
        if coordinator is None:
            return True
        try:
            rejoin = coordinator._rejoin_needed_fut.done()
            return bool(
                coordinator.coordinator_id is not None
                and coordinator.member_id != UNKNOWN_MEMBER_ID
                and coordinator.generation > 0
                and not rejoin
            )
        except AttributeError:
            return True

    def silence(self) -> float | None:
        """Seconds since the last confirmation (``None`` before :meth:`attach`)."""
        return self.contact.silence()
