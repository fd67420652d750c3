"""One benchmark run, phase by phase (``python -m bench``; ``make bench``).

Order, so every phase finds what it needs and none disturbs another:

1. tokens are produced to a fresh ``push-tokens`` (not timed as part of a phase);
2. **ingest**: a worker starts and fills its table; timed from ``/readyz`` to
   the last tokens-changelog write, checked with ``/stats``;
3. **recovery**: the worker stops, the changelog is read raw with aiokafka,
   the worker's data dir is wiped and it starts again: spawn to ``/readyz``;
4. payments are produced to a fresh ``payments`` with the worker stopped;
5. **baseline**: ``bench.baseline`` joins them without Faust;
6. **join**: the worker starts on them: ``/readyz`` to the last notification
   line in its log sink, with the exact count checked;
7. **latency** and **soak**: one paced stream (``--rate``), latency of the
   first ``--latency-seconds``, RSS over all of it;
8. **http**: ``bench.httpload`` against ``POST /tokens``;
   then **delivery** (:mod:`bench.delivery_run`): its own topics and worker,
   sending to the fake FCM (a backlog of payments, then a paced stream);
9. tokens *and* payments are produced to a second pair of topics (the backlog);
10. **backlog**: a fresh worker starts on both: ``/readyz`` to its last
    notification line, its lines checked one by one (missing, extra) against
    event-time expectations, reported, never failing the run;
11. **quix**: ``bench.quix`` (Quix Streams, its own virtualenv) on the same
    backlog, whose lines must be exact.

Every name (app id, topics) carries a fresh run id; the run deletes its
topics at the end, whatever happened.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench import compare, kafka, latency, report, sink
from bench.backlog import (
    DeviceHistory,
    TimedPayment,
    backlog_span_ms,
    expected_lines,
    payments_start_ms,
    timed_payments,
    token_changes,
)
from bench.config import INGEST_SECTIONS, SECTIONS, BenchConfig, scaled
from bench.delivery_run import DeliveryError, DeliveryScenario
from bench.fcm import FakeFcmError
from bench.lines import compare as compare_lines
from bench.lines import expected_fingerprints, sink_fingerprints
from bench.profile import Profiler, summarize_file, summary_text
from bench.stats import growth, percentile, rate
from bench.worker import (
    REPO,
    MemorySampler,
    WorkerError,
    WorkerProcess,
    clean_environment,
    cpu_seconds,
)
from bench.workload import Expected, PaymentRecord, payment_index, payment_records, token_records

RESULTS = REPO / "bench" / "results"
#: The first line of a restore: the bulk copy's, or Faust's recovery's without it.
RECOVERY_STARTS = (b"Bulk restore of table", b"Highwater for active changelog partitions")
RECOVERY_ENDS = b"Recovery complete"
#: The Quix contestant's interpreter unless ``--quix-python`` says otherwise.
QUIX_PYTHON = REPO / ".venv-quix" / "bin" / "python"
#: A backlog contestant is done once its group has committed everything and
#: its sink has had no new notification line for this long.
QUIET_SECONDS = 3.0
#: Slowest rates (records/s) the timeouts allow for, far below any target.
SLOWEST = 300.0


class PhaseError(RuntimeError):
    """A phase could not measure what it should; the message says why."""


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Run:
    """The state of one run: names, the worker, the expectations and the results."""

    def __init__(self, config: BenchConfig, bootstrap: str, out: Path) -> None:
        self.config = config
        self.bootstrap = bootstrap
        self.out = out
        self.run_id = f"bench-{uuid.uuid4().hex[:10]}"
        self.stamp = time.strftime("%Y%m%d-%H%M%S")
        # Taken now: the commit is the code the workers run, even if the
        # tree changes before the report is written.
        self.machine = report.machine()
        self.workdir = Path(tempfile.mkdtemp(prefix="pushes-bench-"))
        self.app_id = app_id = f"pushes-{self.run_id}"
        self.tokens_topic = f"push-tokens-{self.run_id}"
        self.payments_topic = f"payments-{self.run_id}"
        self.changelog = f"{app_id}-tokens-changelog"
        env = {
            "PUSHES_APP_ID": app_id,
            "PUSHES_TOKENS_TOPIC": self.tokens_topic,
            "PUSHES_PAYMENTS_TOPIC": self.payments_topic,
            "PUSHES_DEAD_LETTER_TOPIC": f"pushes-dead-letters-{self.run_id}",
            "PUSHES_UNDELIVERABLE_TOPIC": f"pushes-undeliverable-{self.run_id}",
            "PUSHES_PARTITIONS": str(config.partitions),
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            # Unknown users are reported at once instead of waiting for a late token.
            "PUSHES_LATE_TOKEN_GRACE_SECONDS": "0",
            "PUSHES_LOG_FORMAT": "text",
        }
        self.worker = WorkerProcess(clean_environment(env), self.workdir)
        self.sampler: MemorySampler | None = None
        self.expected = Expected()
        self.results: dict[str, Any] = {}
        self.series: dict[str, Any] = {"rss": [], "phases": []}
        # The backlog: its own topics, and our worker's own app id (group, tables).
        self.backlog_tokens_topic = f"push-tokens-backlog-{self.run_id}"
        self.backlog_payments_topic = f"payments-backlog-{self.run_id}"
        self.backlog_app_id = f"pushes-backlog-{self.run_id}"
        self.backlog_worker = WorkerProcess(
            clean_environment(
                {
                    **env,
                    "PUSHES_APP_ID": self.backlog_app_id,
                    "PUSHES_TOKENS_TOPIC": self.backlog_tokens_topic,
                    "PUSHES_PAYMENTS_TOPIC": self.backlog_payments_topic,
                    "PUSHES_DEAD_LETTER_TOPIC": f"pushes-dead-letters-backlog-{self.run_id}",
                    "PUSHES_UNDELIVERABLE_TOPIC": f"pushes-undeliverable-backlog-{self.run_id}",
                    "PUSHES_LATE_TOKEN_GRACE_SECONDS": str(config.backlog_grace_seconds),
                }
            ),
            self.workdir,
            name="backlog",
        )
        #: Hashes of the lines the backlog must give (:mod:`bench.lines`).
        self.backlog_expected: Any = None

    # --- the run --------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Every phase, then the report; cleans up the topics whatever happens."""
        started = time.time()
        say(f"run {self.run_id}, work dir {self.workdir}")
        try:
            if self.config.runs_ingest_phases:
                self._ingest_phases()
                self._stop_worker()  # the backlog's contestants get the machine to themselves
            else:
                for name in INGEST_SECTIONS:
                    self.results[name] = {"skipped": True}
            # The delivery scenario and the backlog have their own topics and
            # workers: they run whatever happened above.
            self._phase("delivery", self._delivery, optional=True, after=())
            backlog = ("preproduce_backlog",)
            if self.config.runs_backlog_phases:
                self._phase("preproduce_backlog", self._preproduce_backlog, after=())
            self._phase("backlog", self._backlog, optional=True, after=backlog)
            self._phase("quix", self._quix, optional=True, after=backlog)
        finally:
            self._clean_up()
        self.results["run_seconds"] = time.time() - started
        return self.results

    def _ingest_phases(self) -> None:
        kafka.create_topics(
            self.bootstrap,
            {
                self.tokens_topic: self.config.partitions,
                self.payments_topic: self.config.partitions,
            },
        )
        self._phase("preproduce_tokens", self._preproduce_tokens)
        self._phase("ingest", self._ingest)
        self._phase("recovery", self._recovery, optional=True)
        self._phase("preproduce_payments", self._preproduce_payments)
        self._phase("baseline", self._baseline, optional=True)
        self._phase("join", self._join, optional=True)
        self._phase("latency", self._paced)
        self._phase("http", self._http, optional=True)

    def _clean_up(self) -> None:
        # Each step on its own: a failed stop must not leave the topics behind.
        try:
            self._stop_worker()
            self.backlog_worker.stop()
        finally:
            deleted = kafka.delete_topics_containing(self.bootstrap, self.run_id)
            say(f"deleted {len(deleted)} topics of {self.run_id}")
            if not self.config.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _phase(
        self,
        name: str,
        body: Callable[[], None],
        optional: bool = False,
        after: tuple[str, ...] | None = None,
    ) -> None:
        """Run ``body`` unless skipped or a phase it needs failed (``after``; default: any)."""
        failed = [
            n
            for n, r in self.results.items()
            if isinstance(r, dict) and "error" in r and (after is None or n in after)
        ]
        if failed:
            self.results.setdefault(name, {"error": f"not run: {failed[0]} failed"})
            return
        if optional and not self.config.runs(name):
            self.results[name] = {"skipped": True}
            return
        if not name.startswith("preproduce"):
            self.series["phases"].append((name, time.time()))
        try:
            body()
        except (PhaseError, WorkerError, OSError, subprocess.SubprocessError) as exc:
            self.results[name] = {**self.results.get(name, {}), "error": str(exc)}
            say(f"{name} FAILED: {exc}")

    # --- phases ---------------------------------------------------------------

    def _preproduce_tokens(self) -> None:
        config = self.config
        done = kafka.produce_all(
            self.bootstrap,
            self.tokens_topic,
            token_records(config.tokens, config.users, config.seed),
        )
        _require(done.errors == 0, f"{done.errors} token records were not acknowledged")
        self.results["preproduce"] = {"tokens": _produced(done)}
        say(f"produced {done.records:,} tokens in {done.seconds:.1f}s ({done.rate:,.0f}/s)")

    def _ingest(self) -> None:
        spawned = self._start_worker()
        ready = self.worker.wait_ready(timeout=180)
        marks = kafka.Watermarks(self.bootstrap, self.changelog, self.config.partitions)
        try:
            done, writes, stats = self._wait_table(marks, ready)
        finally:
            marks.close()
        seconds = done - ready
        memory = self.worker.memory()
        self.results["ingest"] = {
            "tokens": self.config.tokens,
            "users": stats["users"],
            "devices": stats["devices"],
            "changelog_records": writes,
            "startup_seconds": ready - spawned,
            "seconds": seconds,
            "tokens_per_second": rate(self.config.tokens, seconds),
            "peak_rss_mb": memory.peak_mb if memory else None,
        }
        say(f"ingest: {self.config.tokens:,} tokens in {seconds:.1f}s")

    def _wait_table(self, marks: kafka.Watermarks, ready: float) -> tuple[float, int, Any]:
        """Wait until the table holds every token: ``(done at, changelog records, /stats)``.

        The tokens changelog gets one write per applied registration, so its
        end offsets tell when the last one was applied without costing the
        worker anything; ``/stats`` (which walks the table) confirms it once.
        If the watermark settles below the count (writes coalesced), ``/stats``
        decides, and the last changelog write is when the table was full.
        """
        expected = self.config.tokens
        deadline = time.monotonic() + 120 + expected / SLOWEST
        written, last_growth, last_stats = 0, ready, 0.0
        while True:
            now = time.time()
            total = marks.total()
            if total > written:
                written, last_growth = total, now
            quiet = written and now - last_growth > 3 and now - last_stats > 3
            if written >= expected or quiet:
                last_stats = now
                stats = self.worker.stats()
                if stats["devices"] >= expected:
                    return last_growth, written, stats
            if time.monotonic() > deadline:
                raise PhaseError(
                    f"the table did not get all {expected:,} tokens in time: the changelog "
                    f"has {written:,} writes\n{self.worker.tail()}"
                )
            self.worker.check_alive()
            time.sleep(0.1)

    def _recovery(self) -> None:
        writes = self.results["ingest"]["changelog_records"]
        self._stop_worker()
        raw = kafka.read_raw(self.bootstrap, self.changelog, self.config.partitions)
        _require(raw.records == writes, f"raw read got {raw.records:,} of {writes:,} records")
        shutil.rmtree(self.worker.datadir)
        offset = sink.file_size(self.worker.sink)
        spawned = self._start_worker()
        ready = self.worker.wait_ready(timeout=120 + writes / SLOWEST)
        memory = self.worker.memory()
        stats = self.worker.stats()
        _require(
            stats["devices"] == self.config.tokens,
            f"after recovery the table has {stats['devices']:,} of {self.config.tokens:,} devices",
        )
        began = sink.first_line_ms(self.worker.sink, offset, *RECOVERY_STARTS)
        ended = sink.first_line_ms(self.worker.sink, offset, RECOVERY_ENDS)
        seconds = ready - spawned
        restore = (ended - began) / 1000 if began is not None and ended is not None else None
        ours = rate(writes, seconds)
        self.results["recovery"] = {
            "changelog_records": writes,
            "seconds_to_ready": seconds,
            "tokens_per_second": ours,
            "restore_seconds_from_log": restore,
            "restore_tokens_per_second_from_log": rate(writes, restore),
            "raw_read": {
                "records": raw.records,
                "bytes": raw.bytes,
                "seconds": raw.seconds,
                "records_per_second": raw.rate,
            },
            "ratio_to_raw_read": ours / raw.rate if ours and raw.rate else None,
            "peak_rss_mb": memory.peak_mb if memory else None,
        }
        say(f"recovery: ready {seconds:.1f}s after spawn; raw read {raw.seconds:.1f}s")

    def _preproduce_payments(self) -> None:
        self._stop_worker()  # the payments are all there before the worker starts
        config = self.config
        records = payment_records(
            config.payments,
            tokens=config.tokens,
            users=config.users,
            seed=config.seed,
            mix=config.mix,
            tag="join",
        )
        done = kafka.produce_all(
            self.bootstrap, self.payments_topic, _tallied(records, self.expected)
        )
        _require(done.errors == 0, f"{done.errors} payment records were not acknowledged")
        self.results["preproduce"]["payments"] = _produced(done)
        self.results["workload"] = vars(self.expected).copy()
        say(f"produced {done.records:,} payments in {done.seconds:.1f}s ({done.rate:,.0f}/s)")

    def _baseline(self) -> None:
        sink_path = self.workdir / "baseline.log"
        command = [
            sys.executable, "-m", "bench.baseline", "--bootstrap", self.bootstrap,
            "--tokens-topic", self.tokens_topic, "--payments-topic", self.payments_topic,
            "--partitions", str(self.config.partitions),
            "--db", str(self.workdir / "baseline-db"), "--sink", str(sink_path),
        ]  # fmt: skip
        out, peak_mb = _run_measured(
            command, timeout=120 + (self.config.tokens + self.config.payments) / SLOWEST
        )
        result = json.loads(out)
        lines = sink.summarize(sink.notification_lines(sink_path))
        _require(
            lines.lines == self.expected.notifications,
            f"the baseline wrote {lines.lines:,} notification lines, "
            f"expected {self.expected.notifications:,}",
        )
        seconds = result["payments_seconds"]
        self.results["baseline"] = {
            "payments": result["payments"],
            "seconds": seconds,
            "payments_per_second": rate(result["payments"], seconds),
            "notification_lines": lines.lines,
            "tokens_loaded": result["tokens"],
            "tokens_seconds": result["tokens_seconds"],
            "tokens_per_second": rate(result["tokens"], result["tokens_seconds"]),
            "peak_rss_mb": peak_mb,
        }
        self.series["baseline_per_second"] = self._payments_per_second(
            lines, result["payments_started_at"]
        )
        say(f"baseline: {result['payments']:,} payments in {seconds:.1f}s")

    def _join(self) -> None:
        config = self.config
        offset = sink.file_size(self.worker.sink)
        follower = sink.SinkFollower(self.worker.sink, offset)
        spawned = self._start_worker()
        ready = self.worker.wait_ready(timeout=180)
        profiler = None
        if config.profile:
            profiler = Profiler(
                self.worker.pid, self._result_path("profile", ".speedscope.json"),
                self.workdir / "py-spy.log",
            )  # fmt: skip
        try:
            complete = self._within_budget(follower, self.expected, config.join_budget_seconds)
        finally:
            if profiler is not None:
                self._save_profile(profiler)
        if complete:
            time.sleep(1)  # anything beyond the expected lines would be a duplicate notification
        counts = follower.poll()
        lines = sink.summarize(sink.notification_lines(self.worker.sink, offset))
        _require(lines.last_ms is not None, "the worker wrote no notification line")
        seconds = (lines.last_ms or 0) / 1000 - ready
        # Out of budget: the payments done so far, estimated from the lines written.
        done = config.payments * min(1.0, counts.notifications / self.expected.notifications)
        ours = rate(round(done) if not complete else config.payments, seconds)
        baseline = self.results.get("baseline", {}).get("payments_per_second")
        memory = self.worker.memory()
        self.results["join"] = {
            "payments": config.payments,
            "complete": complete,
            "notification_lines": counts.notifications,
            "not_notified_lines": counts.without_token,
            "expected_notification_lines": self.expected.notifications,
            "expected_not_notified_lines": self.expected.without_token,
            "startup_seconds": ready - spawned,
            "seconds": seconds,
            "payments_per_second": ours,
            "ratio_to_baseline": ours / baseline if ours and baseline else None,
            "peak_rss_mb": memory.peak_mb if memory else None,
            "profiled": config.profile,
        }
        self.series["join_per_second"] = self._payments_per_second(lines, ready)
        if not complete:
            say(
                f"join: out of its {config.join_budget_seconds:g}s budget after about "
                f"{done:,.0f} payments; the rest is skipped"
            )
            self._skip_backlog()
            return
        _require(
            counts.notifications == self.expected.notifications,
            f"{counts.notifications:,} notification lines, expected exactly "
            f"{self.expected.notifications:,}",
        )
        say(f"join: {config.payments:,} payments in {seconds:.1f}s")

    def _within_budget(
        self, follower: sink.SinkFollower, expected: Expected, budget: float
    ) -> bool:
        """Wait for every expected line; ``False`` if ``budget`` seconds ran out first."""
        try:
            self._wait_lines(follower, expected, budget)
        except PhaseError:
            self.worker.check_alive()  # a dead worker is an error, not a slow one
            return False
        return True

    def _paced(self) -> None:
        config = self.config
        if not (config.runs("latency") or config.runs("soak")):
            self.results["latency"] = self.results["soak"] = {"skipped": True}
            return
        if not config.runs("join"):
            # The join's payments are in the topic (the baseline reads them):
            # left there, the worker would work through them during the stream.
            self._skip_backlog()
        self._ensure_worker()
        count = config.paced_payments
        produced_ms = array("q", bytes(8 * count))
        lines_of = array("b", bytes(count))  # notification lines each payment must give
        expected = Expected()

        def stream() -> Iterator[tuple[bytes, bytes]]:
            records = payment_records(
                count, tokens=config.tokens, users=config.users, seed=config.seed + 1,
                mix=config.mix, tag="paced",
            )  # fmt: skip
            for i, record in enumerate(records):
                expected.add(record)
                lines_of[i] = 0 if record.duplicate else record.devices
                yield record.key, record.value

        offset = sink.file_size(self.worker.sink)
        follower = sink.SinkFollower(self.worker.sink, offset)
        say(f"paced stream: {count:,} payments at {config.rate:g}/s")
        started = time.time()
        done = kafka.produce_paced(
            self.bootstrap,
            self.payments_topic,
            stream(),
            config.rate,
            lambda i, ms: produced_ms.__setitem__(i, ms),
        )
        ended = time.time()
        _require(done.errors == 0, f"{done.errors} paced payments were not acknowledged")
        # A worker slower than the rate is still measured: the wait is bounded and
        # the lines that did not come count with a lower bound of their latency.
        self._drain(follower, expected, timeout=max(60.0, config.paced_seconds / 2))
        gave_up = int(time.time() * 1000)
        arrivals = (
            (at, payment_index(payment_id))
            for at, payment_id in sink.timed_notifications(
                sink.notification_lines(self.worker.sink, offset)
            )
            if payment_id.startswith(PACED_PREFIX)
        )
        window, whole = latency.measure(
            arrivals,
            produced_ms,
            lines_of,
            window_end_ms=started * 1000 + config.latency_seconds * 1000,
            gave_up_ms=gave_up,
        )
        self.series["latencies_ms"] = window.values
        self.results["latency"] = {
            "rate": config.rate,
            "achieved_rate": done.rate,
            "seconds": config.latency_seconds,
            "notification_lines": len(window.values),
            **_percentiles(window),
        }
        rss = [s for s in self._samples() if started <= s[0] <= ended]
        if config.runs("soak"):
            self.results["soak"] = {
                "seconds": ended - started,
                "payments": done.records,
                "rss_start_mb": rss[0][1] if rss else None,
                "rss_end_mb": rss[-1][1] if rss else None,
                "rss_max_mb": max(v for _, v in rss) if rss else None,
                "rss_growth": growth(rss),
                "latency_over_soak": _percentiles(whole),
            }
        else:
            self.results["soak"] = {"skipped": True}
        say(
            f"latency p99 {self.results['latency']['p99_ms']} ms"
            + (f" (lower bound: {window.missing:,} lines never came)" if window.missing else "")
        )
        if whole.missing:
            self._skip_backlog()  # the HTTP phase must not share the worker with a backlog

    def _skip_backlog(self) -> None:
        """Stop the worker and skip the payments it has not processed yet."""
        self._stop_worker()
        kafka.skip_to_end(
            self.bootstrap,
            self.app_id,
            [self.payments_topic, f"{self.app_id}-payments-canonical"],
            self.config.partitions,
        )

    def _http(self) -> None:
        self._ensure_worker()
        command = [
            sys.executable, "-m", "bench.httpload", "--url", self.worker.url,
            "--seconds", str(self.config.http_seconds),
            "--connections", str(self.config.http_connections),
            "--users", str(self.config.users), "--seed", str(self.config.seed),
        ]  # fmt: skip
        out, _ = _run_measured(command, timeout=self.config.http_seconds + 120)
        self.results["http"] = json.loads(out)
        say(f"http: {self.results['http']['accepted_per_second']:,.0f} registrations/s")

    def _delivery(self) -> None:
        """The worker sending real pushes to the fake FCM (:mod:`bench.delivery_run`)."""
        scenario = DeliveryScenario(self.config, self.bootstrap, self.run_id, self.workdir, say)
        try:
            scenario.run()
        except (DeliveryError, FakeFcmError) as exc:
            raise PhaseError(str(exc)) from exc
        finally:
            # What was measured before a failure stays in the report.
            self.results["delivery"] = scenario.result

    # --- the backlog: our worker and Quix on tokens and payments at once -------

    def _preproduce_backlog(self) -> None:
        config = self.config
        kafka.create_topics(
            self.bootstrap,
            {
                self.backlog_tokens_topic: config.partitions,
                self.backlog_payments_topic: config.partitions,
            },
        )
        # Event times (the Kafka timestamps too) end a minute ago: a broker may
        # refuse timestamps in the future, and old ones fall out of retention.
        now_ms = int(time.time() * 1000)
        start_ms = now_ms - backlog_span_ms(config.tokens, config.payments) - 60_000
        changes = token_changes(
            config.tokens, config.users, config.seed, start_ms,
            removed=config.backlog_removed, refreshed=config.backlog_refreshed,
        )  # fmt: skip
        tokens = kafka.produce_timed(
            self.bootstrap, self.backlog_tokens_topic, (c.record() for c in changes)
        )
        _require(tokens.errors == 0, f"{tokens.errors} backlog token records were not acknowledged")
        history = DeviceHistory(changes)
        first_payment_ms = payments_start_ms(changes)
        del changes  # the history has them by user

        def payments() -> Iterator[TimedPayment]:
            return timed_payments(
                config.payments, tokens=config.tokens, users=config.users, seed=config.seed,
                mix=config.mix, start_ms=first_payment_ms,
            )  # fmt: skip

        tally = Expected()

        def records() -> Iterator[tuple[bytes, bytes, int]]:
            for timed in payments():
                tally.add(timed.record)
                yield timed.record.key, timed.record.value, timed.timestamp_ms

        done = kafka.produce_timed(self.bootstrap, self.backlog_payments_topic, records())
        _require(done.errors == 0, f"{done.errors} backlog payments were not acknowledged")
        # The same seed gives the same payments again: their expected lines, as hashes.
        grace_ms = config.backlog_grace_seconds * 1000
        self.backlog_expected = expected_fingerprints(expected_lines(history, payments(), grace_ms))
        self.results.setdefault("preproduce", {}).update(
            backlog_tokens=_produced(tokens), backlog_payments=_produced(done)
        )
        self.results["backlog_workload"] = {
            "token_records": tokens.records,
            "payments": tally.payments,
            "duplicates": tally.duplicates,
            "failed": tally.failed,
            "keyed_by_payment": tally.keyed_by_payment,
            "expected_notification_lines": len(self.backlog_expected),
            "removed_share": config.backlog_removed,
            "refreshed_share": config.backlog_refreshed,
            "grace_seconds": config.backlog_grace_seconds,
        }
        say(
            f"backlog: produced {tokens.records:,} token records and {done.records:,} payments; "
            f"{len(self.backlog_expected):,} notification lines expected"
        )

    def _backlog(self) -> None:
        """Our worker on the backlog: reported line by line, never failing the run."""
        config = self.config
        worker = self.backlog_worker
        lag = kafka.GroupLag(
            self.bootstrap,
            self.backlog_app_id,
            [
                self.backlog_tokens_topic,
                self.backlog_payments_topic,
                f"{self.backlog_app_id}-tokens-canonical",
                f"{self.backlog_app_id}-payments-canonical",
            ],
            config.partitions,
        )
        sampler = None
        try:
            spawned = worker.start()
            sampler = MemorySampler(worker.pid)
            sampler.start()
            ready = worker.wait_ready(timeout=180)
            ready_cpu = cpu_seconds(worker.pid)
            complete, last_cpu = self._wait_backlog(worker, lag, config.backlog_budget_seconds)
            memory = worker.memory()
        finally:
            worker.stop()
            if sampler is not None:
                self.series["rss"].append(sampler.stop())
            lag.close()
        check = compare_lines(
            self.backlog_expected, sink_fingerprints(sink.notification_lines(worker.sink))
        )
        lines = sink.summarize(sink.notification_lines(worker.sink))
        seconds = (lines.last_ms or 0) / 1000 - ready if lines.last_ms else None
        self.results["backlog"] = {
            "payments": config.payments,
            "token_records": self.results["backlog_workload"]["token_records"],
            "complete": complete,
            **check.as_dict(),
            "startup_seconds": ready - spawned,
            "seconds": seconds,
            "payments_per_second": rate(config.payments, seconds),
            "cpu_seconds": _difference(last_cpu, ready_cpu),
            "process_cpu_seconds": last_cpu,
            "peak_rss_mb": memory.peak_mb if memory else None,
        }
        self.series["backlog_per_second"] = self._payments_per_second(lines, ready, backlog=True)
        verdict = "exact" if check.exact else f"{check.missing:,} missing, {check.extra:,} extra"
        say(
            f"backlog (ours): {check.written:,} of {check.expected:,} lines ({verdict})"
            + (f" in {seconds:.1f}s" if seconds else "")
            + ("" if complete else f"; cut off after {config.backlog_budget_seconds:g}s")
        )

    def _wait_backlog(
        self, worker: WorkerProcess, lag: kafka.GroupLag, budget: float
    ) -> tuple[bool, float | None]:
        """Wait until the worker has committed everything and its sink is quiet.

        Returns whether it got there within ``budget`` seconds, and the
        worker's CPU seconds when its last notification line came.
        """
        follower = sink.SinkFollower(worker.sink)
        deadline = time.monotonic() + budget
        lines, grew, cpu = -1, time.monotonic(), cpu_seconds(worker.pid)
        next_lag = 0.0
        while time.monotonic() < deadline:
            worker.check_alive()
            now = time.monotonic()
            count = follower.poll().notifications
            if count != lines:
                lines, grew, cpu = count, now, cpu_seconds(worker.pid)
            elif now - grew >= QUIET_SECONDS and now >= next_lag:
                next_lag = now + 1.0
                if lag.lag() == 0:
                    return True, cpu
            time.sleep(0.2)
        return False, cpu

    def _quix(self) -> None:
        """Quix Streams on the backlog, in its own virtualenv; its lines must be exact."""
        config = self.config
        python = Path(config.quix_python) if config.quix_python else QUIX_PYTHON
        if not python.exists():
            if config.quix_python:
                raise PhaseError(f"no Quix interpreter at {python}")
            self.results["quix"] = {
                "skipped": True,
                "reason": f"no {python}: `make .venv-quix/.installed` makes it",
            }
            say(f"quix: SKIPPED, no {python} (`make .venv-quix/.installed`)")
            return
        sink_path = self.workdir / "quix.log"
        result_path = self.workdir / "quix.json"
        command = [
            str(python), "-m", "bench.quix", "--bootstrap", self.bootstrap,
            "--tokens-topic", self.backlog_tokens_topic,
            "--payments-topic", self.backlog_payments_topic,
            "--partitions", str(config.partitions), "--group", f"pushes-quix-{self.run_id}",
            "--state-dir", str(self.workdir / "quix-state"), "--sink", str(sink_path),
            "--result", str(result_path),
            "--grace-ms", str(config.backlog_grace_seconds * 1000),
        ]  # fmt: skip
        spawned = time.time()
        _, usage = _run_measured_usage(
            command, timeout=180 + config.backlog_budget_seconds, env=clean_environment({})
        )
        result = json.loads(result_path.read_text())
        check = compare_lines(
            self.backlog_expected, sink_fingerprints(sink.notification_lines(sink_path))
        )
        lines = sink.summarize(sink.notification_lines(sink_path))
        started = result["started_at"]
        seconds = (lines.last_ms or 0) / 1000 - started if lines.last_ms else None
        theirs = rate(result["payments"], seconds)
        ours = self.results.get("backlog", {}).get("payments_per_second")
        self.results["quix"] = {
            "payments": result["payments"],
            "token_records": result["tokens"],
            **check.as_dict(),
            "startup_seconds": started - spawned,
            "seconds": seconds,
            "payments_per_second": theirs,
            "cpu_seconds": result["done_cpu_seconds"] - result["started_cpu_seconds"],
            "process_cpu_seconds": usage.ru_utime + usage.ru_stime,
            "shutdown_seconds": result["stopped_at"] - result["done_at"],
            "peak_rss_mb": usage.ru_maxrss / 1024,
            "ratio_ours_to_quix": ours / theirs if ours and theirs else None,
            "versions": result["versions"],
        }
        self.series["quix_per_second"] = self._payments_per_second(lines, started, backlog=True)
        say(
            f"quix: {result['payments']:,} payments, {check.written:,} of {check.expected:,} "
            f"lines" + (f" in {seconds:.1f}s" if seconds else "")
        )
        _require(
            check.exact,
            f"Quix wrote {check.written:,} notification lines, expected exactly "
            f"{check.expected:,}: {check.missing:,} missing, {check.extra:,} extra",
        )

    # --- helpers --------------------------------------------------------------

    def _wait_lines(self, follower: sink.SinkFollower, expected: Expected, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            counts = follower.poll()
            if (
                counts.notifications >= expected.notifications
                and counts.without_token >= expected.without_token
            ):
                return
            if time.monotonic() > deadline:
                raise PhaseError(
                    f"after {timeout:.0f}s the sink has {counts.notifications:,} of "
                    f"{expected.notifications:,} notification lines and "
                    f"{counts.without_token:,} of {expected.without_token:,} 'not notified' "
                    f"lines\n{self.worker.tail()}"
                )
            self.worker.check_alive()
            time.sleep(0.2)

    def _drain(self, follower: sink.SinkFollower, expected: Expected, timeout: float) -> None:
        """Wait for a stream's lines, at most ``timeout`` seconds."""
        with contextlib.suppress(PhaseError):
            self._wait_lines(follower, expected, timeout)

    def _payments_per_second(
        self, lines: sink.SinkSummary, start: float, backlog: bool = False
    ) -> list[tuple[float, float]]:
        # Lines per second -> payments per second, at the workload's lines per payment.
        if backlog:
            per_payment = len(self.backlog_expected) / max(1, self.config.payments)
        else:
            per_payment = self.expected.notifications / max(1, self.expected.payments)
        return [(second - start, n / (per_payment or 1)) for second, n in lines.per_second]

    def _start_worker(self) -> float:
        spawned = self.worker.start()
        self.sampler = MemorySampler(self.worker.pid)
        self.sampler.start()
        return spawned

    def _ensure_worker(self) -> None:
        if self.worker.proc is None or self.worker.proc.poll() is not None:
            self._start_worker()
            self.worker.wait_ready(timeout=180)

    def _stop_worker(self) -> None:
        self.worker.stop()
        if self.sampler is not None:
            self.series["rss"].append(self.sampler.stop())
            self.sampler = None

    def _samples(self) -> list[tuple[float, float]]:
        return list(self.sampler.samples) if self.sampler is not None else []

    def _result_path(self, kind: str, suffix: str) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / f"{kind}-{self.stamp}{suffix}"

    def _save_profile(self, profiler: Profiler) -> None:
        path = profiler.stop()
        if not path.exists():
            raise PhaseError(f"py-spy wrote no profile; see {self.workdir / 'py-spy.log'}")
        summary = summarize_file(path, str(REPO))
        text = self._result_path("profile", ".txt")
        text.write_text(summary_text(summary))
        self.results["profile"] = {
            **summary.as_dict(),
            "speedscope": str(path),
            "summary": str(text),
        }


PACED_PREFIX = "bp-paced-"


def _tallied(records: Iterator[PaymentRecord], expected: Expected) -> Iterator[tuple[bytes, bytes]]:
    for record in records:
        expected.add(record)
        yield record.key, record.value


def _produced(done: kafka.Produced) -> dict[str, Any]:
    return {"records": done.records, "seconds": done.seconds, "records_per_second": done.rate}


def _percentiles(latencies: latency.Latencies) -> dict[str, Any]:
    ordered = latencies.values
    return {
        "p50_ms": percentile(ordered, 50),
        "p99_ms": percentile(ordered, 99),
        "max_ms": float(ordered[-1]) if ordered else None,
        "missing_lines": latencies.missing,
        "percentiles_are_lower_bounds": latencies.lower_bound,
    }


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise PhaseError(message)


def _run_measured(command: list[str], timeout: float) -> tuple[str, float]:
    """Run a bench helper; return its stdout and its peak RSS in MiB."""
    out, usage = _run_measured_usage(command, timeout)
    return out, usage.ru_maxrss / 1024


def _run_measured_usage(
    command: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[str, Any]:
    """Run a bench helper; return its stdout and its resource usage (``os.wait4``)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err, env=env)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise PhaseError(f"{command[2]} did not finish within {timeout:.0f}s")
            time.sleep(0.1)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise PhaseError(
                f"{command[2]} exited with {proc.returncode}: {err.read().decode()[-2000:]}"
            )
        return out.read().decode(), usage


def _difference(end: float | None, start: float | None) -> float | None:
    return end - start if end is not None and start is not None else None


def build_report(run: Run) -> dict[str, Any]:
    """The JSON report of a finished run."""
    results = run.results
    config = run.config
    ingest, recovery, join = (results.get(k, {}) for k in ("ingest", "recovery", "join"))
    body: dict[str, Any] = {
        "meta": {
            "run_id": run.run_id,
            "started": run.stamp,
            "seconds": results.get("run_seconds"),
            "machine": run.machine,
            "full_scale": config.scale == 1.0 and not config.skip,
        },
        "config": config.describe(),
        "workload": results.get("workload", {}),
        "preproduce": results.get("preproduce", {}),
    }
    if "backlog_workload" in results:
        body["backlog_workload"] = results["backlog_workload"]
    for section in SECTIONS:
        body[section] = results.get(section, {"error": "not run"})
    body["memory"] = {
        "ingest_peak_mb": ingest.get("peak_rss_mb"),
        "recovery_peak_mb": recovery.get("peak_rss_mb"),
        "join_peak_mb": join.get("peak_rss_mb"),
        "backlog_peak_mb": results.get("backlog", {}).get("peak_rss_mb"),
        "soak_growth": results.get("soak", {}).get("rss_growth"),
    }
    if "profile" in results:
        body["profile"] = results["profile"]
    body["targets"] = [t.as_dict() for t in report.targets(body)]
    return body


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, argparse.Namespace]:
    """The run's configuration from the command line (and ``BENCH_SCALE``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Benchmark the pushes worker on the local broker."
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=float(os.environ.get("BENCH_SCALE") or 1.0),
        help="shrink counts and durations (default: $BENCH_SCALE or 1 = the full run)",
    )
    for flag, kind, what in (
        ("--tokens", int, "token registrations (full: 1,000,000)"),
        ("--users", int, "users they spread over (full: 200,000)"),
        ("--payments", int, "payments of the join (full: 1,000,000)"),
        ("--rate", float, "payments/s of the latency window and the soak (2,000)"),
        ("--latency-seconds", float, "latency window (full: 60)"),
        ("--soak-seconds", float, "soak, including the latency window (full: 300)"),
        ("--http-seconds", float, "HTTP load (full: 20)"),
        ("--http-connections", int, "concurrent HTTP connections (64)"),
        ("--join-budget", float, "seconds the join may take before it is cut off (full: 300)"),
        ("--backlog-budget", float, "seconds each backlog contestant may take (full: 900)"),
        ("--backlog-grace", int, "the worker's late-token grace in the backlog, s (600)"),
        ("--backlog-removed", float, "share of the backlog's devices removed (0.05)"),
        ("--backlog-refreshed", float, "share of the backlog's devices given a new token (0.05)"),
        ("--quix-python", str, "the Quix contestant's interpreter (.venv-quix/bin/python)"),
        ("--delivery-users", int, "delivery: users, with 1-3 devices each (full: 50,000)"),
        ("--delivery-payments", int, "delivery: payments waiting for the worker (full: 100,000)"),
        ("--delivery-rate", float, "delivery: payments/s of the paced stream (1,000)"),
        ("--delivery-seconds", float, "delivery: length of the paced stream (full: 60)"),
        ("--delivery-budget", float, "delivery: cut-off of each wait for the fake (full: 300)"),
        ("--fcm-latency", float, "the fake FCM's latency per request, s (0.05)"),
        ("--fcm-share-429", float, "the fake FCM's share of 429 answers (0.01)"),
        ("--fcm-share-503", float, "the fake FCM's share of 503 answers (0.01)"),
        ("--join-reference", float, "payments/s the join must reach (default: not compared)"),
        ("--partitions", int, "partitions of every topic (8)"),
        ("--seed", int, "workload seed (1)"),
    ):
        parser.add_argument(flag, type=kind, default=None, help=what)
    parser.add_argument(
        "--skip",
        default="",
        help=f"comma-separated sections to leave out: {', '.join(SECTIONS[1:])} "
        "(ingest too once every section after it up to http is left out)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated sections to run, the rest left out (e.g. backlog,quix)",
    )
    parser.add_argument(
        "--delivery-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting of the delivery worker, for experiments (PUSHES_FCM_MAX_IN_FLIGHT=512)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the worker during the join")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where reports go")
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument(
        "--check-targets", action="store_true", help="exit 3 if a measured target is missed"
    )
    args = parser.parse_args(argv)
    delivery_env: list[tuple[str, str]] = []
    for item in args.delivery_env:
        name, equals, value = item.partition("=")
        if not equals or not name:
            parser.error(f"--delivery-env takes NAME=VALUE, not {item!r}")
        delivery_env.append((name, value))
    skip = frozenset(s.strip() for s in args.skip.split(",") if s.strip())
    only = frozenset(s.strip() for s in args.only.split(",") if s.strip())
    if only:
        if skip:
            parser.error("--only and --skip do not go together")
        if only - set(SECTIONS):
            parser.error(f"unknown sections {sorted(only - set(SECTIONS))}")
        # The phases after ingest need its table: asking for one brings ingest along.
        needed = only | ({"ingest"} if only & set(INGEST_SECTIONS) else set())
        skip = frozenset(SECTIONS) - needed
    try:
        config = scaled(
            args.scale,
            tokens=args.tokens,
            users=args.users,
            payments=args.payments,
            rate=args.rate,
            latency_seconds=args.latency_seconds,
            soak_seconds=args.soak_seconds,
            http_seconds=args.http_seconds,
            http_connections=args.http_connections,
            join_budget_seconds=args.join_budget,
            backlog_budget_seconds=args.backlog_budget,
            backlog_grace_seconds=args.backlog_grace,
            backlog_removed=args.backlog_removed,
            backlog_refreshed=args.backlog_refreshed,
            quix_python=args.quix_python,
            delivery_users=args.delivery_users,
            delivery_payments=args.delivery_payments,
            delivery_rate=args.delivery_rate,
            delivery_seconds=args.delivery_seconds,
            delivery_budget_seconds=args.delivery_budget,
            fcm_latency_s=args.fcm_latency,
            fcm_share_429=args.fcm_share_429,
            fcm_share_503=args.fcm_share_503,
            delivery_env=tuple(delivery_env) or None,
            join_reference=args.join_reference,
            partitions=args.partitions,
            seed=args.seed,
            skip=skip,
            profile=args.profile,
            keep=args.keep,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return config, args


def main(argv: list[str] | None = None) -> int:
    """Run, write ``report-<time>.json`` and ``.png``, print the table; the exit code."""
    config, args = parse_args(argv)
    run = Run(config, args.bootstrap, args.out)
    run.execute()
    body = build_report(run)
    json_path = run._result_path("report", ".json")
    png_path = json_path.with_suffix(".png")
    body["files"] = {"json": str(json_path), "png": str(png_path)}
    report.write_figure(body, run.series, png_path)
    report.write_json(body, json_path)
    rows = report.targets(body)
    print(report.table(rows, config.scale))
    side_by_side = compare.table(body)
    if side_by_side:
        print(side_by_side)
    print(f"report: {json_path}\nfigure: {png_path}")
    if "profile" in body:
        print(f"profile: {body['profile']['speedscope']}\n         {body['profile']['summary']}")
    errors = [
        name for name, section in body.items() if isinstance(section, dict) and "error" in section
    ]
    if errors:
        print(f"FAILED phases: {', '.join(errors)}", file=sys.stderr)
        return 1
    if args.check_targets and any(row.met is False for row in rows):
        return 3
    return 0
