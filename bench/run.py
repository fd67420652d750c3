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
8. **http**: ``bench.httpload`` against ``POST /tokens``.

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

from bench import kafka, latency, report, sink
from bench.config import SECTIONS, BenchConfig, scaled
from bench.profile import Profiler, summarize_file, summary_text
from bench.stats import growth, percentile, rate
from bench.worker import REPO, MemorySampler, WorkerError, WorkerProcess, clean_environment
from bench.workload import Expected, PaymentRecord, payment_index, payment_records, token_records

RESULTS = REPO / "bench" / "results"
#: The first line of a restore: the bulk copy's, or Faust's recovery's without it.
RECOVERY_STARTS = (b"Bulk restore of table", b"Highwater for active changelog partitions")
RECOVERY_ENDS = b"Recovery complete"
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

    # --- the run --------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        """Every phase, then the report; cleans up the topics whatever happens."""
        started = time.time()
        say(f"run {self.run_id}, work dir {self.workdir}")
        try:
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
        finally:
            self._clean_up()
        self.results["run_seconds"] = time.time() - started
        return self.results

    def _clean_up(self) -> None:
        # Each step on its own: a failed stop must not leave the topics behind.
        try:
            self._stop_worker()
        finally:
            deleted = kafka.delete_topics_containing(self.bootstrap, self.run_id)
            say(f"deleted {len(deleted)} topics of {self.run_id}")
            if not self.config.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def _phase(self, name: str, body: Callable[[], None], optional: bool = False) -> None:
        failed = [n for n, r in self.results.items() if isinstance(r, dict) and "error" in r]
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
        self, lines: sink.SinkSummary, start: float
    ) -> list[tuple[float, float]]:
        # Lines per second -> payments per second, at the workload's lines per payment.
        per_payment = self.expected.notifications / max(1, self.expected.payments)
        return [(second - start, n / per_payment) for second, n in lines.per_second]

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
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err)
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
        return out.read().decode(), usage.ru_maxrss / 1024


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
    for section in ("ingest", "recovery", "baseline", "join", "latency", "soak", "http"):
        body[section] = results.get(section, {"error": "not run"})
    body["memory"] = {
        "ingest_peak_mb": ingest.get("peak_rss_mb"),
        "recovery_peak_mb": recovery.get("peak_rss_mb"),
        "join_peak_mb": join.get("peak_rss_mb"),
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
        ("--partitions", int, "partitions of every topic (8)"),
        ("--seed", int, "workload seed (1)"),
    ):
        parser.add_argument(flag, type=kind, default=None, help=what)
    parser.add_argument(
        "--skip",
        default="",
        help=f"comma-separated sections to leave out: {', '.join(SECTIONS[1:])}",
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
    skip = frozenset(s.strip() for s in args.skip.split(",") if s.strip())
    if "ingest" in skip:
        parser.error("ingest cannot be skipped: every other phase needs the filled table")
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
