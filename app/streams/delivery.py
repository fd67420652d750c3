"""The delivery stage: a batch's notifications to the sender, and what becomes of each.

At the end of a batch the engine calls :meth:`DeliveryStage.deliver` with the
batch's tasks.  Every delivery they planned (fixed once, with its deadline:
the same payload and tag on every try) and every retry that is due goes to
the sender in one call, which sends them concurrently.  Then, per outcome:

- ``delivered``: the device joins the payment's sent record;
- ``retry``: into the retry schedule, after ``Retry-After`` (clamped to
  10 s - 1 h) or full-jitter backoff, unless that is past the deadline;
- ``token_gone``: a removal of the device is produced to the tokens topic
  (applied only if the device still holds that token), unless too many sends
  say so at once (:class:`app.domain.delivery.TokenGoneBreaker`);
- ``rejected``, or a deadline passed: to the undeliverable topic, logged once;
- ``misconfigured``: the sender is blocked (:class:`app.domain.delivery.SendGate`),
  ``/readyz`` says why, and the deliveries wait in the retry schedule.

A sent record lists a device only once it is delivered; a delivery in the
retry schedule is never planned again by a replay.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from app.domain.dedup import notified, notified_devices
from app.domain.delivery import SendGate, TokenGoneBreaker, next_attempt_at, retry_key
from app.domain.devices import mask_token
from app.notify.base import Delivery, Outcome, Sender, next_delay
from app.ops import metrics
from app.streams.task import PartitionTask
from app.topics import TopicNames

log = logging.getLogger(__name__)

_SENT = metrics.notifications.labels("sent")
_FAILED = metrics.notifications.labels("failed")


@dataclass(slots=True)
class Attempt:
    """One delivery to try now: planned by this batch, or a retry that is due."""

    task: PartitionTask
    sent_key: bytes
    at_ms: int  # the payment's event time
    delivery: Delivery
    attempts: int  # tries before this one
    scheduled: bool  # in the retry schedule already

    @property
    def retry_key(self) -> bytes:
        """Its key in the retry schedule."""
        d = self.delivery
        return retry_key(d.user_id, d.payment_id, d.status, d.device_id)


def attempt_value(
    attempt: Attempt, *, attempts: int, next_at: float, error: str | None
) -> dict[str, Any]:
    """The retry schedule's value for ``attempt``."""
    d = attempt.delivery
    return {
        "sent_key": attempt.sent_key.decode("utf-8"),
        "at_ms": attempt.at_ms,
        "attempts": attempts,
        "next_at": next_at,
        "last_error": error,
        "delivery": {
            "user_id": d.user_id,
            "device_id": d.device_id,
            "token": d.token,
            "platform": d.platform,
            "title": d.title,
            "body": d.body,
            "payment_id": d.payment_id,
            "status": d.status,
            "amount": d.amount,
            "currency": d.currency,
            "expires_at": d.expires_at,
        },
    }


def attempt_of(task: PartitionTask, key: bytes, value: dict[str, Any]) -> Attempt:
    """The :class:`Attempt` a retry schedule entry stands for."""
    return Attempt(
        task=task,
        sent_key=str(value["sent_key"]).encode("utf-8"),
        at_ms=int(value["at_ms"]),
        delivery=Delivery(**value["delivery"]),
        attempts=int(value["attempts"]),
        scheduled=True,
    )


class DeliveryStage:
    """Sends what a batch planned and what is due again; records the outcomes."""

    def __init__(
        self,
        sender: Sender,
        names: TopicNames,
        send_record: Callable[[str, bytes, bytes], Any],
        *,
        ttl_s: int,
        breaker: TokenGoneBreaker,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.sender = sender
        self.gate = SendGate()
        self._names = names
        self._send_record = send_record
        self._ttl_s = ttl_s
        self._breaker = breaker
        self._clock = clock
        self._rng = rng or random.Random()
        self._halted = False

    @property
    def blocked(self) -> str | None:
        """Why the sender is not asked any more (wrong credentials or project), if it is not."""
        return self.gate.blocked_reason

    async def deliver(self, tasks: Iterable[PartitionTask]) -> None:
        """Send the tasks' planned deliveries and their due retries; record the outcomes."""
        now = self._clock()
        attempts: list[Attempt] = []
        deadline = now + self._ttl_s
        for task in tasks:
            for planned in task.outbox.take():
                delivery = planned.delivery
                # Fixed once, before its first try: every retry sends the same deadline.
                if delivery.expires_at is None:
                    delivery.expires_at = deadline
                attempts.append(Attempt(task, planned.key, planned.at_ms, delivery, 0, False))
            attempts.extend(attempt_of(task, k, v) for k, v in task.due_retries(now))
        if not attempts:
            return
        if not self.gate.may_send(now):
            resume = self.gate.resume_at(now)
            for attempt in attempts:
                self._schedule(attempt, resume, attempt.attempts, "held back: sender not ready")
            return
        outcomes = await self.sender.send([a.delivery for a in attempts])
        now = self._clock()
        misconfigured = next(
            (o.error or o.error_code for o in outcomes if o.kind == "misconfigured"), None
        )
        if misconfigured is not None and self.gate.blocked_reason is None:
            log.error("push sender %s is misconfigured: %s", self.sender.name, misconfigured)
        was_blocked = self.gate.blocked_reason
        self.gate.answered(now, [o.kind for o in outcomes], misconfigured)
        if was_blocked and self.gate.blocked_reason is None:
            log.info("push sender %s works again", self.sender.name)
        reached: dict[tuple[PartitionTask, bytes], tuple[int, set[str]]] = {}
        counts: Counter[tuple[str, str]] = Counter()
        failures: list[tuple[Attempt, Outcome]] = []
        observe = metrics.notification_delay.observe
        for attempt, outcome in zip(attempts, outcomes, strict=True):
            counts[(outcome.kind, outcome.error_code or "")] += 1
            devices = self._reached(reached, attempt)
            if outcome.ok:
                devices.add(attempt.delivery.device_id)
                observe(max(0.0, now - attempt.at_ms / 1000))
                if attempt.scheduled:
                    attempt.task.unschedule(attempt.retry_key)
            else:
                failures.append((attempt, outcome))
        delivered = len(attempts) - len(failures)
        if delivered:
            self._breaker.record(now, False, sends=delivered)
        for attempt, outcome in failures:
            await self._failed(attempt, outcome, now)
            self._breaker.record(now, outcome.kind == "token_gone")
        for (kind, code), n in counts.items():
            metrics.send_outcomes.labels(self.sender.name, kind, code).inc(n)
        _SENT.inc(delivered)
        if failures:
            _FAILED.inc(len(failures))
        for (task, key), (at_ms, devices) in reached.items():
            task.tables.sent[key] = notified(at_ms, devices)
        self._check_breaker(now)

    def _reached(
        self, reached: dict[tuple[PartitionTask, bytes], tuple[int, set[str]]], attempt: Attempt
    ) -> set[str]:
        entry = reached.get((attempt.task, attempt.sent_key))
        if entry is None:
            record = attempt.task.tables.sent.get(attempt.sent_key)
            at_ms = attempt.at_ms if record is None else int(record["at"])
            entry = (at_ms, set(notified_devices(record)))
            reached[(attempt.task, attempt.sent_key)] = entry
        return entry[1]

    async def _failed(self, attempt: Attempt, outcome: Outcome, now: float) -> None:
        error = f"{outcome.error_code}: {outcome.error}" if outcome.error else outcome.error_code
        kind = outcome.kind
        if kind == "misconfigured":
            # Not the delivery's fault: it waits, its attempts unchanged.
            self._schedule(attempt, self.gate.resume_at(now), attempt.attempts, error)
        elif kind == "retry" or (kind == "token_gone" and self._breaker.tripped(now)):
            delay = outcome.after_s
            if delay is None:
                delay = next_delay(attempt.attempts, self._rng)
            deadline = attempt.delivery.expires_at or now + self._ttl_s
            at = next_attempt_at(delay, now, deadline)
            if at is None:
                await self._undeliverable(attempt, "expired", error)
            else:
                self._schedule(attempt, at, attempt.attempts + 1, error)
        elif kind == "token_gone":
            await self._remove_token(attempt, now)
        else:
            await self._undeliverable(attempt, kind, error)

    def _schedule(self, attempt: Attempt, at: float, attempts: int, error: str | None) -> None:
        value = attempt_value(attempt, attempts=attempts, next_at=at, error=error)
        attempt.task.schedule(attempt.retry_key, value, at)
        metrics.retries_scheduled.inc()

    async def _remove_token(self, attempt: Attempt, now: float) -> None:
        d = attempt.delivery
        removal = {
            "user_id": d.user_id,
            "device_id": d.device_id,
            "token": None,
            "reason": "unregistered",
            "failed_token": d.token,
            "observed_at": datetime.fromtimestamp(now, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
        }
        await self._send_record(
            self._names.tokens, d.user_id.encode("utf-8"), json.dumps(removal).encode()
        )
        if attempt.scheduled:
            attempt.task.unschedule(attempt.retry_key)
        log.info(
            "device %s of user %s: its token %s is gone (unregistered); removing the device",
            d.device_id,
            d.user_id,
            mask_token(d.token),
        )

    async def _undeliverable(self, attempt: Attempt, outcome: str, error: str | None) -> None:
        d = attempt.delivery
        record = {
            "payment_id": d.payment_id,
            "status": d.status,
            "user_id": d.user_id,
            "device_id": d.device_id,
            "token": mask_token(d.token),
            "outcome": outcome,
            "last_error": error,
            "attempts": attempt.attempts + 1,
            "sender": self.sender.name,
            "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        await self._send_record(
            self._names.undeliverable, d.user_id.encode("utf-8"), json.dumps(record).encode()
        )
        if attempt.scheduled:
            attempt.task.unschedule(attempt.retry_key)
        metrics.undeliverable.labels(outcome).inc()
        log.warning(
            "notification of payment %s (%s) to device %s of user %s is undeliverable: "
            "%s (%s) after %d attempts",
            d.payment_id,
            d.status,
            d.device_id,
            d.user_id,
            outcome,
            error,
            attempt.attempts + 1,
        )

    def _check_breaker(self, now: float) -> None:
        halted = self._breaker.tripped(now)
        if halted and not self._halted:
            log.error(
                "over %d%% of at least %d sends in %d s say the token is gone: tokens are "
                "no longer removed (a wrong project or credentials?); those deliveries wait",
                round(self._breaker.threshold * 100),
                self._breaker.minimum,
                round(self._breaker.window_s),
            )
        elif self._halted and not halted:
            log.info("tokens are removed again on 'token gone'")
        self._halted = halted
        metrics.token_pruning_halted.set(1 if halted else 0)
