"""The benchmark harness still works: a tiny run on the real broker writes a full report.

No timing is asserted (the suite runs on busy machines); only that every
phase ran without error and produced its section, the figure and the profile.
The delivery section runs with a fake FCM that answers every request: with
transient errors it would wait at least the 10 s of each retry, twice.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.harness import BOOTSTRAP, REPO

SECTIONS = (
    "ingest", "recovery", "baseline", "join", "latency", "soak", "http", "delivery", "memory",
    "backlog",
)  # fmt: skip


def test_a_tiny_bench_run_writes_every_section(tmp_path):
    done = subprocess.run(
        [
            sys.executable, "-m", "bench", "--scale", "0.002", "--payments", "3000",
            "--rate", "200", "--latency-seconds", "2", "--soak-seconds", "3",
            "--http-seconds", "1", "--http-connections", "8", "--profile",
            "--delivery-users", "50", "--delivery-payments", "200", "--delivery-rate", "100",
            "--delivery-seconds", "2", "--fcm-share-429", "0", "--fcm-share-503", "0",
            # Quix needs .venv-quix, which `make test` does not build.
            "--skip", "quix",
            "--bootstrap", BOOTSTRAP, "--out", str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    [report_file] = tmp_path.glob("report-*.json")
    report = json.loads(report_file.read_text())
    for section in SECTIONS:
        assert section in report, section
        assert "error" not in report[section], (section, report[section])
        assert not report[section].get("skipped"), section
    assert report["join"]["complete"] is True
    assert report["join"]["notification_lines"] == report["workload"]["notifications"]
    assert report["ingest"]["devices"] == report["config"]["tokens"]
    backlog = report["backlog"]
    assert backlog["complete"] is True
    assert backlog["expected_lines"] == report["backlog_workload"]["expected_notification_lines"]
    assert backlog["written_lines"] == (
        backlog["expected_lines"] - backlog["missing_lines"] + backlog["extra_lines"]
    )
    assert backlog["payments_per_second"] and backlog["cpu_seconds"] is not None
    assert report["quix"] == {"skipped": True}
    delivery = report["delivery"]
    for phase in ("throughput", "latency"):
        assert delivery[phase]["exact"] is True, delivery[phase]
        assert delivery[phase]["expected_pairs"] == delivery[phase]["accepted_records"] > 0
    assert delivery["throughput"]["pairs"] == delivery["workload"]["notifications"]
    assert delivery["notifications_per_second"] and delivery["latency_p99_ms"] is not None
    assert delivery["latency"]["retried_excluded"] == 0  # the fake refused nothing
    assert {t["metric"] for t in report["targets"]} >= {
        "join / baseline", "latency p99", "delivery throughput", "delivery p99",
    }  # fmt: skip
    [reference] = [t for t in report["targets"] if t["metric"] == "join vs reference"]
    assert reference["target"] == "not compared" and reference["met"] is None
    assert report["meta"]["machine"]["cores"]

    assert report_file.with_suffix(".png").stat().st_size > 10_000
    assert report["profile"]["top_self"], report["profile"]
    [summary] = tmp_path.glob("profile-*.txt")
    assert "by self time" in summary.read_text()
    assert "metric" in done.stdout  # the table of targets
