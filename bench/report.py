"""The run's report: targets met or not, the JSON file, the table and the figure."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("faust-streaming", "aiokafka", "rocksdict", "aiohttp", "confluent-kafka", "py-spy")


@dataclass(frozen=True)
class Target:
    """One row of the issue's target table, checked against a measurement."""

    metric: str
    measured: float | None
    unit: str
    op: str  # ">=", "<=" or "<"
    #: None: nothing to compare with (a reference not given).
    goal: float | None

    @property
    def target(self) -> str:
        """The goal as text: ``>= 3000``, or ``not compared``."""
        return "not compared" if self.goal is None else f"{self.op} {self.goal:g}"

    @property
    def met(self) -> bool | None:
        """Whether the measurement meets the goal; ``None`` if not measured or not compared."""
        if self.measured is None or self.goal is None:
            return None
        if self.op == ">=":
            return self.measured >= self.goal
        if self.op == "<":
            return self.measured < self.goal
        return self.measured <= self.goal

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "metric": self.metric,
            "measured": self.measured,
            "unit": self.unit,
            "target": self.target,
            "met": self.met,
        }


def _get(report: dict[str, Any], section: str, key: str) -> float | None:
    value = report.get(section, {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _flag(report: dict[str, Any], section: str, key: str) -> float | None:
    value = report.get(section, {}).get(key)
    return float(value) if isinstance(value, bool) else None


def targets(report: dict[str, Any]) -> list[Target]:
    """The issue's targets, from a report's sections."""
    peaks = [
        p
        for p in (
            _get(report, "memory", "join_peak_mb"),
            _get(report, "memory", "recovery_peak_mb"),
        )
        if p is not None
    ]
    growth = _get(report, "soak", "rss_growth")
    reference = report.get("config", {}).get("join_reference")
    return [
        Target("backlog lines exact", _flag(report, "backlog", "exact"), "yes/no", ">=", 1),
        Target("backlog / Quix Streams", _get(report, "quix", "ratio_ours_to_quix"),
               "ratio", ">=", 1.5),
        Target("join / baseline", _get(report, "join", "ratio_to_baseline"), "ratio", ">=", 0.5),
        Target("ingest", _get(report, "ingest", "tokens_per_second"), "tokens/s", ">=", 20_000),
        Target("recovery", _get(report, "recovery", "tokens_per_second"),
               "tokens/s", ">=", 100_000),
        Target("recovery / raw read", _get(report, "recovery", "ratio_to_raw_read"),
               "ratio", ">=", 0.5),
        Target("latency p99", _get(report, "latency", "p99_ms"), "ms", "<=", 50),
        Target("worker peak RSS", max(peaks) if peaks else None, "MiB", "<=", 400),
        Target("RSS growth over soak", None if growth is None else growth * 100, "%", "<", 10),
        Target("HTTP registrations", _get(report, "http", "accepted_per_second"),
               "req/s", ">=", 3_000),
        Target("HTTP p99", _get(report, "http", "p99_ms"), "ms", "<=", 50),
        Target("delivery throughput", _get(report, "delivery", "notifications_per_second"),
               "notifications/s", ">=", 3_000),
        Target("delivery p99", _get(report, "delivery", "latency_p99_ms"), "ms", "<=", 250),
        # The log sender must not get slower: the lead's reference payments/s, if given.
        Target("join vs reference", _get(report, "join", "payments_per_second"), "payments/s",
               ">=", float(reference) if isinstance(reference, (int, float)) else None),
    ]  # fmt: skip


def table(rows: list[Target], scale: float) -> str:
    """The plain-text table printed at the end of a run."""
    lines = [f"{'metric':<24} {'measured':>22} {'target':>24}  met?"]
    for row in rows:
        measured = "-" if row.measured is None else f"{row.measured:,.4g} {row.unit}"
        if row.measured is not None and abs(row.measured) >= 1000:
            measured = f"{row.measured:,.0f} {row.unit}"
        met = {True: "yes", False: "NO", None: "-"}[row.met]
        target = row.target if row.goal is None else f"{row.target} {row.unit}"
        lines.append(f"{row.metric:<24} {measured:>22} {target:>24}  {met}")
    if scale != 1.0:
        lines.append(f"(scale {scale:g}: the targets are for the full workload, scale 1)")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Cores, CPU model, memory, OS and versions, for the report."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
    except (OSError, IndexError, ValueError):
        mem_kib = 0
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "kafka_broker": _kafka_version(),
        "packages": versions,
        "git": _git_state(),
    }


def _kafka_version() -> str | None:
    # The broker scripts/kafka runs is the one pinned in its Maven file.
    pom = REPO / "scripts" / "kafka-pom.xml"
    text = pom.read_text() if pom.exists() else ""
    start = text.find("<kafka.version>")
    if start < 0:
        return None
    start += len("<kafka.version>")
    return text[start : text.index("<", start)].strip()


def _git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def write_json(report: dict[str, Any], path: Path) -> None:
    """Write the report (indented, UTF-8)."""
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def write_figure(report: dict[str, Any], series: dict[str, Any], path: Path) -> None:
    """Latency histogram, join throughput over time and worker RSS, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat_ax, tput_ax, rss_ax) = plt.subplots(3, 1, figsize=(10, 12))
    latencies = series.get("latencies_ms") or []
    if latencies:
        lat_ax.hist(latencies, bins=100, color="tab:blue")
        lat_ax.set_yscale("log")
        for key, style in (("p50_ms", "--"), ("p99_ms", "-")):
            value = report.get("latency", {}).get(key)
            if value is not None:
                lat_ax.axvline(
                    value, color="tab:red", linestyle=style, label=f"{key[:3]} {value:.0f} ms"
                )
        lat_ax.legend()
    lat_ax.set_title(
        f"latency at {report['config']['rate']:g} payments/s (produce -> notification line)"
    )
    lat_ax.set_xlabel("ms")
    lat_ax.set_ylabel("notification lines")

    for name, color in (
        ("join", "tab:green"),
        ("baseline", "tab:gray"),
        ("backlog", "tab:orange"),
        ("quix", "tab:red"),
    ):
        points = series.get(f"{name}_per_second") or []
        if points:
            overall = report.get(name, {}).get("payments_per_second") or 0
            tput_ax.plot(
                [t for t, _ in points],
                [v for _, v in points],
                color=color,
                label=f"{name} ({overall:,.0f}/s overall)",
            )
    tput_ax.set_title("join throughput over time (payments/s, from notification lines per second)")
    tput_ax.set_xlabel("seconds since the phase started")
    tput_ax.set_ylabel("payments/s")
    if tput_ax.lines:
        tput_ax.legend()

    segments = [s for s in series.get("rss") or [] if s]
    if segments:
        start = segments[0][0][0]
        for segment in segments:
            rss_ax.plot(
                [t - start for t, _ in segment], [v for _, v in segment], color="tab:purple"
            )
        for name, at in series.get("phases", []):
            rss_ax.axvline(at - start, color="black", linewidth=0.5)
            rss_ax.text(at - start, rss_ax.get_ylim()[1], name, rotation=90, va="top", fontsize=8)
    rss_ax.set_title("worker RSS over the run (a restarted worker starts a new line)")
    rss_ax.set_xlabel("seconds since the first worker start")
    rss_ax.set_ylabel("MiB")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
