"""The contestants side by side: our worker, Quix Streams and the aiokafka baseline (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Contestant:
    """One contestant on one workload, from a report section."""

    name: str
    workload: str
    payments_per_second: float | None
    cpu_seconds: float | None
    peak_rss_mb: float | None
    lines: str


def _number(section: dict[str, Any], key: str) -> float | None:
    value = section.get(key)
    return float(value) if isinstance(value, (int, float)) else None


def _lines(section: dict[str, Any]) -> str:
    if "error" in section:
        return "FAILED"
    if "missing_lines" in section:
        if section.get("exact"):
            return "exact"
        return f"{section['missing_lines']:,} missing, {section['extra_lines']:,} extra"
    if "notification_lines" in section:
        return "count ok" if section.get("complete", True) else "cut off"
    return "-"


def contestants(report: dict[str, Any]) -> list[Contestant]:
    """The rows of every section that ran (one that was skipped has none)."""
    rows = []
    for section, name, workload in (
        ("join", "ours", "join"),
        ("backlog", "ours", "backlog"),
        ("quix", "Quix Streams", "backlog"),
        ("baseline", "aiokafka baseline", "join"),
    ):
        body = report.get(section) or {}
        if not body or body.get("skipped") or ("error" in body and len(body) == 1):
            continue
        rows.append(
            Contestant(
                name=name,
                workload=workload,
                payments_per_second=_number(body, "payments_per_second"),
                cpu_seconds=_number(body, "cpu_seconds"),
                peak_rss_mb=_number(body, "peak_rss_mb"),
                lines=_lines(body),
            )
        )
    return rows


def table(report: dict[str, Any]) -> str:
    """The plain-text table printed after the targets; empty if no contestant ran."""
    rows = contestants(report)
    skipped = (report.get("quix") or {}).get("reason")
    if not rows:
        return f"Quix skipped: {skipped}" if skipped else ""

    def show(value: float | None, digits: str) -> str:
        return "-" if value is None else format(value, digits)

    header = f"{'contestant':<18} {'workload':<8} {'payments/s':>11} {'CPU s':>7} {'peak MiB':>9}"
    lines = [header + "  lines"]
    for row in rows:
        lines.append(
            f"{row.name:<18} {row.workload:<8} {show(row.payments_per_second, ',.0f'):>11} "
            f"{show(row.cpu_seconds, ',.1f'):>7} {show(row.peak_rss_mb, ',.0f'):>9}  {row.lines}"
        )
    ratio = _number(report.get("quix") or {}, "ratio_ours_to_quix")
    if ratio is not None:
        lines.append(f"ours / Quix on the backlog: {ratio:.2f}")
    if skipped:
        lines.append(f"Quix skipped: {skipped}")
    return "\n".join(lines)
