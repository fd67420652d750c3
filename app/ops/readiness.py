"""When a worker may take traffic: ``GET /readyz``.

Faust starts the web server *before* the consumer joins its group and before
the tables are recovered from their changelogs, so "the port answers" means
little.  A worker is ready once it passed the startup topic check, received a
partition assignment, and finished recovering the tables for it; it is not
ready again while a rebalance moves partitions and recovers them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadinessState:
    """What the worker knows about its own startup, at one moment."""

    topics_checked: bool
    joined_group: bool
    recovery_completed: bool
    rebalancing: bool
    stopping: bool = False
    #: Why the push sender is not asked any more (wrong credentials or project).
    sender_blocked: str | None = None


def not_ready_reason(state: ReadinessState) -> str | None:
    """Why the worker must not take traffic yet, or ``None`` when it may."""
    if state.stopping:
        return "the worker is shutting down"
    if not state.topics_checked:
        return "the startup topic check has not passed yet"
    if not state.joined_group:
        return "the worker has not joined the consumer group yet (no partition assignment)"
    if not state.recovery_completed:
        return "table recovery from the changelog is not finished"
    if state.rebalancing:
        return "a rebalance is in progress; tables are being recovered"
    if state.sender_blocked is not None:
        return (
            f"the push sender is misconfigured ({state.sender_blocked}); notifications "
            "wait in the retry schedule until it is fixed"
        )
    return None


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
