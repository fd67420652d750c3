"""When a worker may take traffic: ``GET /readyz``.

Faust starts the web server *before* the consumer joins its group and before
the tables are recovered from their changelogs, so "the port answers" means
little.  A worker is ready once it passed the startup topic check, received a
partition assignment, and finished recovering the tables for it; it is not
ready again while a rebalance moves partitions and recovers them.

It is not ready either while Kafka does not answer it: once no round trip to
the broker has succeeded for ``PUSHES_BROKER_UNREACHABLE_SECONDS`` (a
registration could not be stored, a payment not processed), and, after the
broker is back, until the consumer is a member of its group again: its
coordinator known, no rejoin pending, and a heartbeat or a join answered
within that time.  Everything here is pure: the worker measures, these
functions decide.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: The default of ``PUSHES_BROKER_UNREACHABLE_SECONDS``.
DEFAULT_UNREACHABLE_AFTER = 10.0


@dataclass(frozen=True)
class ReadinessState:
    """What the worker knows about its own startup and its broker, at one moment."""

    topics_checked: bool
    joined_group: bool
    recovery_completed: bool
    rebalancing: bool
    stopping: bool = False
    #: Why the push sender is not asked any more (wrong credentials or project).
    sender_blocked: str | None = None
    #: Seconds without a successful round trip to the broker (``None``: not measured yet).
    broker_silence: float | None = None
    #: Seconds since the group coordinator last confirmed this member (a heartbeat
    #: answered, or a join); ``None``: not measured.
    coordinator_silence: float | None = None
    #: The consumer has a coordinator, a member id, and no rejoin pending.
    in_group: bool = True
    #: ``PUSHES_BROKER_UNREACHABLE_SECONDS``.
    unreachable_after: float = DEFAULT_UNREACHABLE_AFTER


def broker_reachable(silence: float | None, unreachable_after: float) -> bool:
    """Whether the broker counts as reachable after ``silence`` seconds without an answer.

    Not measured yet (``None``) counts as reachable: nothing has failed.
    """
    return silence is None or silence < unreachable_after


def not_ready_reason(state: ReadinessState) -> str | None:
    """Why the worker must not take traffic now, or ``None`` when it may."""
    limit = state.unreachable_after
    if state.stopping:
        return "the worker is shutting down"
    if not broker_reachable(state.broker_silence, limit):
        return (
            f"no successful round trip to the Kafka broker for {_seconds(state.broker_silence)} "
            f"(PUSHES_BROKER_UNREACHABLE_SECONDS={limit:g}); tokens cannot be stored now"
        )
    if not state.topics_checked:
        return "the startup topic check has not passed yet"
    if not state.joined_group:
        return "the worker has not joined the consumer group yet (no partition assignment)"
    if not state.recovery_completed:
        return "table recovery from the changelog is not finished"
    if state.rebalancing:
        return "a rebalance is in progress; tables are being recovered"
    if not state.in_group:
        return "the consumer is rejoining its group (coordinator lost or rejoin requested)"
    if not broker_reachable(state.coordinator_silence, limit):
        return (
            "the group coordinator has not confirmed this worker's membership for "
            f"{_seconds(state.coordinator_silence)}; waiting for the consumer to rejoin"
        )
    if state.sender_blocked is not None:
        return (
            f"the push sender is misconfigured ({state.sender_blocked}); notifications "
            "wait in the retry schedule until it is fixed"
        )
    return None


def _seconds(value: float | None) -> str:
    return f"{value or 0.0:.0f} s"


class Contact:
    """When a peer (the broker, the group coordinator) last answered; monotonic time.

    Silence counts from the last answer, or from :meth:`start` before the
    first one: a peer that never answered is as silent as the time waited.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None
        #: Monotonic time of the last answer (``None``: none yet).
        self.last_answer: float | None = None

    def start(self) -> None:
        """Start counting silence now (once; later calls change nothing)."""
        if self._since is None:
            self._since = self._clock()

    def answered(self) -> None:
        """The peer answered just now."""
        self.last_answer = self._clock()
        self.start()

    def silence(self) -> float | None:
        """Seconds since the last answer (or since :meth:`start`); ``None`` before both."""
        since = self.last_answer if self.last_answer is not None else self._since
        return None if since is None else max(0.0, self._clock() - since)


class StartupFlags:
    """Facts recorded by the app as they happen (Faust keeps no flag for them)."""

    def __init__(self) -> None:
        #: The topics the startup check found (or created), with the right counts.
        self.checked_topics: frozenset[str] = frozenset()
        self.joined_group = False

    @property
    def topics_checked(self) -> bool:
        """Whether the startup topic check has passed (it always finds some topics)."""
        return bool(self.checked_topics)
