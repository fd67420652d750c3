"""Delivery policy: when a failed notification is tried again, when it is given up,
when dead tokens may be pruned, and when the provider is not asked at all.

Pure: the clock and the randomness are arguments.  The engine
(:mod:`app.streams.delivery`) acts on these decisions; the sender contract
and FCM's answers are :mod:`app.notify.base`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

#: How often a blocked sender (wrong credentials or project) is tried once again.
PROBE_EVERY_S = 60.0
#: A batch whose every answer was "try again" (at least this many) rests the sender.
REST_AFTER = 5
#: The first rest of an unavailable provider, doubled each time up to REST_MAX_S.
REST_FIRST_S = 2.0
REST_MAX_S = 60.0


def retry_key(user_id: str, payment_id: str, status: str, device_id: str) -> bytes:
    """The retry schedule's key: the user first, so a user's waiting retries are one range."""
    return "\x1f".join((user_id, payment_id, status, device_id)).encode("utf-8")


def user_prefix(user_id: str) -> bytes:
    """The start of every retry key of ``user_id``."""
    return user_id.encode("utf-8") + b"\x1f"


def next_attempt_at(delay_s: float, now_s: float, deadline_s: float) -> float | None:
    """When to try again after ``delay_s``, or ``None`` when that is past the deadline."""
    at = now_s + delay_s
    return at if at < deadline_s else None


class TokenGoneBreaker:
    """Stops pruning tokens when too many sends at once say the token is gone.

    More than ``threshold`` of at least ``minimum`` sends within ``window_s``
    answered "token gone" is a wrong project or wrong credentials, not that
    many dead phones: removing those devices would lose them all.  Sends are
    counted in one-second buckets, so the memory does not grow with the rate.
    """

    def __init__(self, threshold: float, *, minimum: int = 100, window_s: float = 60.0) -> None:
        if not 0 < threshold <= 1:
            raise ValueError("threshold is a share in (0, 1]")
        self.threshold = threshold
        self.minimum = minimum
        self.window_s = window_s
        self._buckets: deque[list[int]] = deque()  # [second, sends, gone]
        self._sends = 0
        self._gone = 0

    def record(self, now_s: float, gone: bool, *, sends: int = 1) -> None:
        """``sends`` answered, all of them gone if ``gone`` (one by default)."""
        second = int(now_s)
        if self._buckets and self._buckets[-1][0] == second:
            bucket = self._buckets[-1]
        else:
            bucket = [second, 0, 0]
            self._buckets.append(bucket)
        bucket[1] += sends
        self._sends += sends
        if gone:
            bucket[2] += sends
            self._gone += sends
        self._forget(now_s)

    def tripped(self, now_s: float) -> bool:
        """Whether pruning must stop now."""
        self._forget(now_s)
        return self._sends >= self.minimum and self._gone > self.threshold * self._sends

    def _forget(self, now_s: float) -> None:
        while self._buckets and self._buckets[0][0] <= now_s - self.window_s:
            _, sends, gone = self._buckets.popleft()
            self._sends -= sends
            self._gone -= gone


@dataclass
class SendGate:
    """Whether to ask the provider now, after what it answered before.

    - *open*: send.
    - *blocked* (a ``misconfigured`` answer): send nothing but one batch every
      :data:`PROBE_EVERY_S`, as a probe; a delivery in it opens the gate again.  The
      deliveries wait in the retry schedule meanwhile: nothing is dropped.
    - *resting* (a batch answered only "try again"): send nothing until the
      rest is over, so a provider in trouble does not slow every batch down
      to its timeouts; each rest in a row is twice as long, up to
      :data:`REST_MAX_S`.
    """

    blocked_reason: str | None = None
    resting_until: float = 0.0
    next_probe: float = 0.0
    _rests: int = 0

    def may_send(self, now_s: float) -> bool:
        """Whether a batch may go to the provider now."""
        if self.blocked_reason is not None:
            return now_s >= self.next_probe
        return now_s >= self.resting_until

    def resume_at(self, now_s: float) -> float:
        """When deliveries held back now can be tried."""
        if self.blocked_reason is not None:
            return max(self.next_probe, now_s)
        return max(self.resting_until, now_s)

    def answered(self, now_s: float, kinds: list[str], misconfigured: str | None) -> None:
        """A batch came back with outcomes of ``kinds`` (``misconfigured``: the first error)."""
        if misconfigured is not None:
            self.blocked_reason = misconfigured
            self.next_probe = now_s + PROBE_EVERY_S
            return
        if "delivered" in kinds:
            self.blocked_reason = None
        if kinds and all(kind == "retry" for kind in kinds) and len(kinds) >= REST_AFTER:
            self._rests += 1
            self.resting_until = now_s + min(REST_MAX_S, REST_FIRST_S * 2 ** (self._rests - 1))
        elif "delivered" in kinds:
            self._rests = 0
            self.resting_until = 0.0
