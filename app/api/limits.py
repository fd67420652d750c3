"""Abuse limits of the token API: registrations per user, refused requests per address.

- **Registrations**: a user JWT's holder may register at most
  ``PUSHES_REGISTRATIONS_PER_USER_PER_HOUR`` (20) tokens an hour; one more is
  429 with ``Retry-After``.  The service token is not limited (a trusted
  backend, possibly migrating many devices), nor is an open API (development).
  Removals (``DELETE``) are not counted: they only ever shrink what is stored.
- **Refused requests**: every 401, 403 and 429 answer is counted against the
  client's address; past ``PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE``
  every request from that address is 429 until the count drains, before any
  JWT is verified or key set fetched.  The 429s count too, so a client that
  keeps hammering stays refused.  A request with the service token is never
  refused for its address: a backend may share a NAT address with others.
  Not on an open API: there is no credential to guess, and load generators
  and fuzzers must not be slowed down.
  IPv6 clients are counted by /64 network, the block one subscriber gets.

**The structure: GCRA, one float per key.**  A limit of ``L`` per period
``P`` is the generic cell rate algorithm with emission interval ``T = P / L``
and burst tolerance ``P - T``: a fresh key may make ``L`` requests at once,
then one every ``T`` seconds (20 an hour: 20 at once, then one every 3
minutes); over any window of length ``P`` a key gets at most ``2L - 1``.  The
whole state of a key is its theoretical arrival time (TAT), so memory does
not grow with the limit.  A key whose TAT has passed is exactly as if it had
never been seen and is dropped; keys are kept in least-recently-written order
and each call drops up to two idle keys from the old end (a call adds at most
one), so beyond a backlog that shrinks with every call the map holds only keys
written within the last period.  It never holds more than
``max_keys``: at that size the oldest key is dropped even if still active
(``evicted_active`` counts those), which can only give that key a fresh
allowance, never refuse anyone wrongly.  Keys are stored by their ``hash()``
(per-process random SipHash), so a 256-character user id costs what a short
one does.  The clock is injected (monotonic by default).

**Where the state lives, and why that is enough with several workers.**  In
memory, in each worker process, lost on restart.  Workers do not share it:
behind a load balancer that spreads one user's ``POST /tokens`` over ``N``
workers, that user can register up to ``N`` times the limit, and an address
can fail ``N`` times as often before every worker refuses it.  That is good
enough because these limits are a brake on abuse (a leaked token churning
devices, a client guessing credentials), not a quota anyone is billed for, and
``N`` is at most ``PUSHES_PARTITIONS`` (8 by default).  Today ``POST /tokens``
and ``DELETE`` are answered by whichever worker receives them and only
``GET /tokens/{user_id}`` is routed to the partition's owner; routing POST to
the owner too (the same ``route_req`` as GET) would make the per-user limit
exact, at the price of a second hop for most registrations and 503s while
owners are unknown during a rebalance, and its state would still restart
fresh when a partition moves.  That is not needed for a brake.  Per-address
limits belong at the edge (load balancer, WAF) as well; this one keeps a
worker from spending its CPU on verifying forged JWTs.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.api import refusals
from app.api.callers import Caller
from app.api.refusals import Refusal
from app.config import Settings

Clock = Callable[[], float]

#: The answers counted against a client's address.
FAILURE_STATUSES = frozenset({401, 403, 429})
DEFAULT_MAX_KEYS = 100_000
#: Idle keys dropped per call: more than the one key a call can add.
_SWEEP_PER_CALL = 2


@dataclass(frozen=True)
class Verdict:
    """Whether one more request is allowed now, else the seconds until it would be."""

    allowed: bool
    retry_after: float = 0.0


_ALLOWED = Verdict(True)


class RateLimiter:
    """``limit`` requests per ``period`` seconds per key (GCRA, see the module doc)."""

    def __init__(
        self,
        limit: int,
        period: float,
        *,
        clock: Clock = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if limit < 1 or period <= 0 or max_keys < 1:
            raise ValueError("limit, period and max_keys must be positive")
        self.limit = limit
        self.period = period
        self.clock = clock
        self.max_keys = max_keys
        self.interval = period / limit
        self.tolerance = period - self.interval
        #: Keys dropped while still active, because the map was full.
        self.evicted_active = 0
        self._tat: OrderedDict[int, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tat)

    def check(self, key: str) -> Verdict:
        """Whether ``key`` may make a request now, without counting one."""
        now = self.clock()
        self._sweep(now)
        return self._verdict(max(self._tat.get(hash(key), now), now), now)

    def acquire(self, key: str) -> Verdict:
        """Count a request of ``key`` if it is allowed; a refused one is not counted."""
        now = self.clock()
        self._sweep(now)
        tat = max(self._tat.get(hash(key), now), now)
        verdict = self._verdict(tat, now)
        if verdict.allowed:
            self._store(hash(key), tat + self.interval, now)
        return verdict

    def record(self, key: str) -> None:
        """Count a request of ``key`` that already happened, allowed or not.

        Saturates at a full window: a key that keeps going stays refused, and
        is allowed again ``interval`` seconds after it stops, not hours later.
        """
        now = self.clock()
        self._sweep(now)
        tat = max(self._tat.get(hash(key), now), now)
        self._store(hash(key), min(tat + self.interval, now + self.period), now)

    def _verdict(self, tat: float, now: float) -> Verdict:
        wait = tat - self.tolerance - now
        return _ALLOWED if wait <= 0 else Verdict(False, wait)

    def _store(self, key: int, tat: float, now: float) -> None:
        if key in self._tat:
            self._tat.move_to_end(key)
        elif len(self._tat) >= self.max_keys:
            _, oldest = self._tat.popitem(last=False)
            if oldest > now:
                self.evicted_active += 1
        self._tat[key] = tat

    def _sweep(self, now: float) -> None:
        for _ in range(_SWEEP_PER_CALL):
            if not self._tat:
                return
            key, tat = next(iter(self._tat.items()))
            if tat > now:
                return
            del self._tat[key]


class AbuseLimits:
    """The API's two limits (see the module doc), each a :class:`RateLimiter`."""

    def __init__(
        self,
        *,
        registrations_per_hour: int = 20,
        failures_per_minute: int = 60,
        clock: Clock = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.registrations = RateLimiter(
            registrations_per_hour, 3600.0, clock=clock, max_keys=max_keys
        )
        self.failures = RateLimiter(failures_per_minute, 60.0, clock=clock, max_keys=max_keys)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.monotonic) -> AbuseLimits:
        """The limits ``settings`` configure."""
        return cls(
            registrations_per_hour=settings.registrations_per_user_per_hour,
            failures_per_minute=settings.failed_requests_per_address_per_minute,
            clock=clock,
        )

    def admit_address(self, address: str) -> Refusal | None:
        """429 if ``address`` (a :func:`client_key`) had too many refusals lately."""
        verdict = self.failures.check(address)
        if verdict.allowed:
            return None
        return refusals.too_many_failures(self.failures.limit, verdict.retry_after)

    def admit_registration(self, caller: Caller) -> Refusal | None:
        """Count a ``POST /tokens`` of a user caller; 429 if that user is over the limit."""
        if not caller.is_user or caller.user_id is None:
            return None
        verdict = self.registrations.acquire(caller.user_id)
        if verdict.allowed:
            return None
        return refusals.too_many_registrations(self.registrations.limit, verdict.retry_after)

    def record_answer(self, address: str, status: int) -> None:
        """Count the answer given to ``address`` if it is a refusal (401, 403, 429)."""
        if status in FAILURE_STATUSES:
            self.failures.record(address)


def client_key(remote: str | None, forwarded_for: str | None, trusted_proxy_hops: int) -> str:
    """The key a client is limited by.

    ``remote`` is the connection's peer.  With ``trusted_proxy_hops`` proxies
    in front, each appending its peer to ``X-Forwarded-For``, the client is
    that many entries from the right; entries left of it are the client's own
    claims and are ignored.  IPv4 addresses (IPv4-mapped ones too) are keys as
    they are; IPv6 addresses are keyed by their /64 network.
    """
    address = remote
    if trusted_proxy_hops > 0 and forwarded_for:
        entries = [entry.strip() for entry in forwarded_for.split(",") if entry.strip()]
        if entries:
            address = entries[-min(trusted_proxy_hops, len(entries))]
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address.strip()[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
