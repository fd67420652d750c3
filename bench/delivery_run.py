"""The delivery scenario: a worker sending real pushes to the fake FCM (the run's glue).

1. The fake FCM starts (:mod:`bench.fcm`: its own process, a free port, the
   script of ``--fcm-*``), and a worker with its own app id and topics is
   set to send through it (``PUSHES_SENDER=fcm``).
2. The tokens of users with 1-3 devices are produced; the worker runs until
   ``/stats`` has every device, then stops.
3. **Throughput**: the payments are produced with the worker stopped; it
   starts again.  From its ``/readyz`` until the fake has accepted every
   expected ``(token, payment)`` pair, retries included; then the fake's
   records give the first pass, the whole delivery and the exact check.
4. **Latency**: the fake's records are cleared; a paced stream goes to the
   same worker; per pair, the fake's ``at`` minus the payment's Kafka
   timestamp, over the pairs accepted at their first try.

The arithmetic is in :mod:`bench.delivery`.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import kafka
from bench.config import BenchConfig
from bench.delivery import (
    Pair,
    accepted_records,
    attempt_records,
    check_pairs,
    cpu_between,
    delivery_payments,
    fake_activity,
    first_accepts,
    first_tries,
    first_try_latencies,
    pairs_of,
    registrations,
    sequential_rate,
    split_by_payment,
    throughput,
    user_tokens,
)
from bench.fcm import FakeFcmProcess, FakeScript
from bench.worker import WorkerProcess, clean_environment, cpu_seconds
from bench.workload import Expected

#: Slowest rate (records/s) the timeouts allow for while tokens load.
SLOWEST = 300.0
#: How often the fake's counters are read while waiting (and the CPU sampled).
POLL_S = 0.2
#: The fake's full records are fetched at most this often while waiting.
FETCH_EVERY_S = 2.0
#: Payment ids of the paced stream: ``bp-<tag>-<n>``.
PACED_TAG = "delivery-paced"
PACED_PREFIX = f"bp-{PACED_TAG}-"


class DeliveryError(RuntimeError):
    """The scenario could not measure what it should; the message says why."""


def loop_seconds(pid: int) -> tuple[float, float] | None:
    """``(on a CPU, waiting for one)`` seconds of the main thread of ``pid`` (its event loop).

    The first two fields of ``/proc/<pid>/schedstat``; the wait is time
    runnable but not running, which grows when other threads hold the cores.
    """
    try:
        fields = Path(f"/proc/{pid}/schedstat").read_text().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


#: The columns of a :class:`CpuSampler` sample after its time.
WORKER_CPU, FAKE_CPU, WORKER_LOOP, WORKER_WAIT, FAKE_LOOP, FAKE_WAIT = 1, 2, 3, 4, 5, 6


class CpuSampler(threading.Thread):
    """Samples the worker's and the fake's CPU seconds, and their event loops' share of it.

    Each sample: ``(epoch s, worker CPU, fake CPU, worker loop CPU, worker
    loop wait for a CPU, fake loop CPU, fake loop wait)``.
    """

    def __init__(self, worker: int, fake: int, interval: float = POLL_S) -> None:
        super().__init__(daemon=True)
        self.pids = (worker, fake)
        self.interval = interval
        self.samples: list[tuple[float, ...]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        """Sample until stopped or a process is gone."""
        while not self._halt.is_set():
            cpu = [cpu_seconds(pid) for pid in self.pids]
            loops = [loop_seconds(pid) for pid in self.pids]
            if None in cpu or None in loops:
                return
            values = [*cpu, *(v for loop in loops for v in loop or ())]
            self.samples.append((time.time(), *(float(v or 0) for v in values)))
            self._halt.wait(self.interval)

    def stop(self) -> list[tuple[float, ...]]:
        """Stop sampling; return the samples."""
        self._halt.set()
        self.join()
        return self.samples


class DeliveryScenario:
    """One delivery scenario: its fake, its worker, its topics and its results."""

    def __init__(
        self,
        config: BenchConfig,
        bootstrap: str,
        run_id: str,
        workdir: Path,
        say: Callable[[str], None],
    ) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.say = say
        self.app_id = f"pushes-delivery-{run_id}"
        self.tokens_topic = f"push-tokens-delivery-{run_id}"
        self.payments_topic = f"payments-delivery-{run_id}"
        self.script = FakeScript(
            latency_s=config.fcm_latency_s,
            share_429=config.fcm_share_429,
            share_503=config.fcm_share_503,
            seed=config.seed,
        )
        self.fake = FakeFcmProcess(workdir, self.script)
        env = {
            "PUSHES_APP_ID": self.app_id,
            "PUSHES_TOKENS_TOPIC": self.tokens_topic,
            "PUSHES_PAYMENTS_TOPIC": self.payments_topic,
            "PUSHES_DEAD_LETTER_TOPIC": f"pushes-dead-letters-delivery-{run_id}",
            "PUSHES_UNDELIVERABLE_TOPIC": f"pushes-undeliverable-delivery-{run_id}",
            "PUSHES_PARTITIONS": str(config.partitions),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "PUSHES_LATE_TOKEN_GRACE_SECONDS": "0",
            "PUSHES_LOG_FORMAT": "text",
            **self.fake.env(),
            **dict(config.delivery_env),
        }
        self.worker = WorkerProcess(clean_environment(env), workdir, name="delivery")
        self.tokens_by_user: list[list[str]] = []
        #: :class:`CpuSampler` samples of the step in progress.
        self.cpu: list[tuple[float, ...]] = []
        #: What was measured so far (kept when a later step fails).
        self.result: dict[str, Any] = {"fake": self.script.describe()}

    def run(self) -> dict[str, Any]:
        """Every step; the fake and the worker are stopped whatever happens."""
        try:
            self.fake.start()
            partitions = self.config.partitions
            kafka.create_topics(
                self.bootstrap,
                {self.tokens_topic: partitions, self.payments_topic: partitions},
            )
            self._load_tokens()
            self._throughput()
            self._latency()
            memory = self.worker.memory()
            self.result["peak_rss_mb"] = memory.peak_mb if memory else None
        finally:
            self.worker.stop()
            self.fake.stop()
        problems = [
            f"{name}: {section['duplicate_accepts']:,} duplicate and "
            f"{section['extra_accepts']:,} unexpected accepts"
            for name in ("throughput", "latency")
            if (section := self.result.get(name, {})).get("duplicate_accepts")
            or section.get("extra_accepts")
        ]
        if problems:
            raise DeliveryError("; ".join(problems))
        return self.result

    # --- the steps ------------------------------------------------------------

    def _load_tokens(self) -> None:
        config = self.config
        self.tokens_by_user = user_tokens(config.delivery_users, config.seed)
        tokens = sum(len(t) for t in self.tokens_by_user)
        done = kafka.produce_all(
            self.bootstrap, self.tokens_topic, registrations(self.tokens_by_user)
        )
        _require(done.errors == 0, f"{done.errors} delivery token records were not acknowledged")
        self.worker.start()
        self.worker.wait_ready(timeout=180)
        deadline = time.monotonic() + 120 + tokens / SLOWEST
        while self.worker.stats()["devices"] < tokens:
            self.worker.check_alive()
            if time.monotonic() > deadline:
                raise DeliveryError(f"the delivery worker did not load {tokens:,} tokens in time")
            time.sleep(0.5)
        self.worker.stop()
        per_user = [0] * 4
        for t in self.tokens_by_user:
            per_user[len(t)] += 1
        self.result["workload"] = {
            "users": config.delivery_users,
            "tokens": tokens,
            "users_by_devices": {str(n): per_user[n] for n in (1, 2, 3)},
        }
        self.say(f"delivery: {tokens:,} tokens of {config.delivery_users:,} users loaded")

    def _throughput(self) -> None:
        """The backlog: produced, then delivered by a fresh start of the worker."""
        config = self.config
        expected: set[Pair] = set()
        tally = Expected()

        def records() -> Iterator[tuple[bytes, bytes]]:
            for record in delivery_payments(
                config.delivery_payments, self.tokens_by_user, seed=config.seed, tag="delivery"
            ):
                tally.add(record)
                expected.update(pairs_of(record, self.tokens_by_user))
                yield record.key, record.value

        done = kafka.produce_all(self.bootstrap, self.payments_topic, records())
        _require(done.errors == 0, f"{done.errors} delivery payments were not acknowledged")
        self.result["workload"].update(
            payments=tally.payments,
            duplicates=tally.duplicates,
            failed=tally.failed,
            keyed_by_payment=tally.keyed_by_payment,
            notifications=len(expected),
        )
        self.fake.reset()
        spawned = self.worker.start()
        sampler = CpuSampler(self.worker.pid, self.fake.pid)
        sampler.start()
        try:
            ready = self.worker.wait_ready(timeout=180)
            self.say(f"delivery: {len(expected):,} notifications to send")
            complete = self._wait_accepted(expected)
        finally:
            self.cpu = sampler.stop()
        stats = self.fake.stats()
        accepted = accepted_records(self.fake.accepted())
        attempts = attempt_records(self.fake.attempts())
        tries = first_tries(attempts)
        measured = throughput(expected, tries, first_accepts(accepted), ready)
        first_end = ready + (measured["first_pass_seconds"] or 0)
        rate = measured["first_pass_per_second"]
        sequential = sequential_rate(self.script.latency_s)
        self.result.update(
            notifications_per_second=rate,
            sequential_per_second=sequential,
            sequential_is="computed: 1 / the fake's latency (one request, then its answer)",
            ratio_to_sequential=rate / sequential if rate and sequential else None,
        )
        self.result["throughput"] = {
            "complete": complete,
            "startup_seconds": ready - spawned,
            **measured,
            **check_pairs(expected, accepted).as_dict(),
            **self._usage(ready, first_end, "_first_pass"),
            **{
                f"fake_{k}_first_pass": v
                for k, v in fake_activity(
                    (s.at for s in attempts), self.script.latency_s, ready, first_end
                ).items()
            },
            "fake_max_concurrent": stats["max_concurrent"],
            "fake_token_requests": stats["token_requests"],
        }
        self.say(
            f"delivery throughput: {measured['first_attempts']:,} first attempts in "
            f"{_seconds(measured['first_pass_seconds'])} ({_whole(rate)} notifications/s), "
            f"all accepted after {_seconds(measured['all_accepted_seconds'])}"
        )

    def _latency(self) -> None:
        config = self.config
        count = max(1, round(config.delivery_rate * config.delivery_seconds))
        produced_ms = array("q", bytes(8 * count))
        expected: set[Pair] = set()

        def stream() -> Iterator[tuple[bytes, bytes]]:
            for record in delivery_payments(
                count, self.tokens_by_user, seed=config.seed + 1, tag=PACED_TAG
            ):
                expected.update(pairs_of(record, self.tokens_by_user))
                yield record.key, record.value

        self.fake.reset()
        self.say(f"delivery latency: {count:,} payments at {config.delivery_rate:g}/s")
        sampler = CpuSampler(self.worker.pid, self.fake.pid)
        sampler.start()
        try:
            started = time.time()
            done = kafka.produce_paced(
                self.bootstrap,
                self.payments_topic,
                stream(),
                config.delivery_rate,
                lambda i, ms: produced_ms.__setitem__(i, ms),
            )
            ended = time.time()
            _require(
                done.errors == 0, f"{done.errors} paced delivery payments were not acknowledged"
            )
            complete = self._wait_accepted(expected)
            gave_up_ms = time.time() * 1000
        finally:
            self.cpu = sampler.stop()
        # A retry of the backlog that was cut off may land meanwhile: not the stream's.
        accepted, late = split_by_payment(accepted_records(self.fake.accepted()), PACED_PREFIX)
        attempts, _ = split_by_payment(attempt_records(self.fake.attempts()), PACED_PREFIX)
        tries = first_tries(attempts)
        latencies = first_try_latencies(
            expected, produced_ms, tries, first_accepts(accepted), gave_up_ms
        )
        self.result["latency_p99_ms"] = latencies.as_dict()["p99_ms"]
        self.result["latency"] = {
            "rate": config.delivery_rate,
            "achieved_rate": done.rate,
            "seconds": config.delivery_seconds,
            "payments": done.records,
            "complete": complete,
            **latencies.as_dict(),
            **check_pairs(expected, accepted).as_dict(),
            "backlog_accepts_meanwhile": late,
            **self._usage(started, ended, ""),
            **{
                f"fake_{k}": v
                for k, v in fake_activity(
                    (s.at for s in attempts), self.script.latency_s, started, ended
                ).items()
            },
        }
        p50, p99 = latencies.as_dict()["p50_ms"], self.result["latency_p99_ms"]
        self.say(
            f"delivery latency: p50 {_whole(p50)} ms, p99 {_whole(p99)} ms "
            f"({latencies.retried:,} retried left out)"
        )

    # --- helpers --------------------------------------------------------------

    def _wait_accepted(self, expected: set[Pair]) -> bool:
        """Wait until the fake accepted every pair of ``expected``; ``False`` past the budget."""
        deadline = time.monotonic() + self.config.delivery_budget_seconds
        next_fetch = 0.0
        while True:
            self.worker.check_alive()
            self.fake.check_alive()
            now = time.monotonic()
            # The count is cheap; the full records only once it could be complete.
            if self.fake.stats()["accepted"] >= len(expected) and now >= next_fetch:
                next_fetch = now + FETCH_EVERY_S
                got = first_accepts(accepted_records(self.fake.accepted()))
                if all(pair in got for pair in expected):
                    time.sleep(1)  # a notification sent twice would show up now
                    return True
            if now > deadline:
                return False
            time.sleep(POLL_S)

    def _usage(self, start: float, end: float, suffix: str) -> dict[str, float | None]:
        """CPU seconds and run-queue waits of the worker and the fake over a span."""

        def between(column: int) -> float | None:
            return cpu_between([(s[0], s[column]) for s in self.cpu], start, end)

        return {
            f"worker_cpu_seconds{suffix}": between(WORKER_CPU),
            f"worker_loop_cpu_seconds{suffix}": between(WORKER_LOOP),
            f"worker_loop_run_queue_seconds{suffix}": between(WORKER_WAIT),
            f"fake_cpu_seconds{suffix}": between(FAKE_CPU),
            f"fake_loop_cpu_seconds{suffix}": between(FAKE_LOOP),
            f"fake_loop_run_queue_seconds{suffix}": between(FAKE_WAIT),
        }


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise DeliveryError(message)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _whole(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
