"""The deployment files agree with the app: docker/compose.yaml, the Dockerfile, the Procfile,
and the monitoring (Prometheus config and rules, Grafana provisioning and dashboard).

There is no Docker engine here, so the files are read and held to the app's
own configuration: image versions, services, env names, topics, volumes,
mounted files, scrape targets and the metric names every PromQL expression uses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from app.config import Settings
from app.kafka.admin import required_topics
from tests.metric_names import (
    DASHBOARD,
    PROMETHEUS_SERIES,
    RULES,
    dashboard_expressions,
    load_dashboard,
    missing_metrics,
    promql_metric_names,
    rule_expressions,
    served_series,
    used_metric_names,
)

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
LOCK = REPO / "docker" / "requirements.lock"
WORKERS = ("worker-1", "worker-2")
MONITORING = ("prometheus", "grafana")
PROMETHEUS_CONFIG = REPO / "docker" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "docker" / "grafana"

#: Metrics announced for the worker that it does not serve yet: the files may
#: use them before they exist (any other unknown name is a typo).
ANNOUNCED: frozenset[str] = frozenset()


def config_env_names() -> set[str]:
    """Every environment variable app/config.py reads."""
    source = (REPO / "app" / "config.py").read_text()
    return set(re.findall(r'"((?:PUSHES|KAFKA)_[A-Z0-9_]+)"', source))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def local_kafka_version() -> str:
    pom = (REPO / "scripts" / "kafka-pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match
    return match.group(1)


def test_services_are_kafka_topics_two_workers_and_their_monitoring(compose):
    assert set(compose["services"]) == {"kafka", "topics", *WORKERS, *MONITORING}


def test_kafka_is_the_official_image_in_kraft_mode_same_version_as_local(compose):
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{local_kafka_version()}" == "apache/kafka:4.1.1"
    assert compose["services"]["topics"]["image"] == kafka["image"]
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "ZOOKEEPER" not in " ".join(env)
    assert "healthcheck" in kafka


def test_every_worker_setting_is_one_the_app_reads(compose):
    known = config_env_names()
    for name in WORKERS:
        env = compose["services"][name]["environment"]
        assert set(env) <= known, set(env) - known
        Settings.from_env({k: str(v) for k, v in env.items()})  # and the values are valid


def test_workers_have_their_own_volume_and_advertised_url(compose):
    urls, volumes = set(), set()
    for name in WORKERS:
        service = compose["services"][name]
        env = service["environment"]
        settings = Settings.from_env({k: str(v) for k, v in env.items()})
        assert settings.canonical_url == f"http://{name}:{settings.web_port}"
        (volume,) = service["volumes"]
        source, target = volume.split(":")
        assert target == settings.data_dir and source in compose["volumes"]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        urls.add(settings.canonical_url)
        volumes.add(source)
    assert len(urls) == len(volumes) == len(WORKERS)


def test_the_one_shot_service_creates_exactly_the_topics_the_worker_checks(compose):
    worker_env = compose["services"]["worker-1"]["environment"]
    settings = Settings.from_env({k: str(v) for k, v in worker_env.items()})
    topics = compose["services"]["topics"]
    env = topics["environment"]
    created = set(env["TOPICS"].split()) | set(env["COMPACTED_TOPICS"].split())
    specs = required_topics(settings)
    assert created == {s.name for s in specs}
    compacted = {s.name for s in specs if s.config.get("cleanup.policy") == "compact"}
    assert set(env["COMPACTED_TOPICS"].split()) == compacted
    assert int(env["PARTITIONS"]) == settings.partitions
    assert int(env["REPLICATION_FACTOR"]) == settings.replication_factor
    assert topics["restart"] == "no"
    assert compose["services"]["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_dockerfile_is_multi_stage_non_root_with_a_data_volume():
    text = DOCKERFILE.read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    (user,) = re.findall(r"^USER (\S+)", text, re.M)
    assert user not in ("root", "0")
    assert 'VOLUME ["/var/lib/pushes"]' in text and "PUSHES_DATA_DIR=/var/lib/pushes" in text
    assert 'CMD ["faust", "-A", "app", "worker", "-l", "info"]' in text
    assert "-r docker/requirements.lock" in text and "--no-deps ." in text


def test_the_lock_pins_everything_and_agrees_with_pyproject():
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    # tomllib is 3.11+, and the runtime pins are a plain list of "name==version".
    pyproject = (REPO / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", pyproject, re.M | re.S)
    assert block
    requirements = re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', block.group(1))
    assert requirements
    for name, version in requirements:
        assert pins[name.lower()] == version, name


def test_procfile_runs_the_worker_on_the_platforms_port():
    lines = (REPO / "Procfile").read_text().splitlines()
    (worker,) = [line for line in lines if line.startswith("worker:")]
    assert "faust -A app worker" in worker and "--web-port ${PORT:-6066}" in worker


def test_the_readme_lists_every_setting():
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Configuration") :]
    section = section[: section.index("\n## ", 1)]
    missing = {name for name in config_env_names() if f"`{name}`" not in section}
    assert not missing, f"README's Configuration lacks {sorted(missing)}"


def test_the_wheel_and_the_image_get_every_package():
    import tomllib
    from setuptools import find_packages

    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    packaged = set(find_packages(str(REPO), include=find["find"]["include"]))
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("app", "tables")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert on_disk and on_disk <= packaged, sorted(on_disk - packaged)
    assert not any(name.startswith("tests") for name in packaged)


# --- monitoring ----------------------------------------------------------------


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (relative to docker/)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE.parent / source).resolve()
    return mounts


def worker_settings(compose: dict[str, Any], name: str) -> Settings:
    env = compose["services"][name]["environment"]
    return Settings.from_env({k: str(v) for k, v in env.items()})


def test_monitoring_images_are_pinned_releases(compose):
    images = {name: compose["services"][name]["image"] for name in MONITORING}
    repos = {name: image.rpartition(":")[0] for name, image in images.items()}
    assert repos == {"prometheus": "prom/prometheus", "grafana": "grafana/grafana"}
    for image in images.values():
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", image.rpartition(":")[2]), image


def test_every_file_the_compose_file_mounts_exists(compose):
    mounted = [path for s in compose["services"].values() for path in bind_mounts(s).values()]
    assert set(mounted) >= {PROMETHEUS_CONFIG, RULES, GRAFANA / "provisioning", DASHBOARD}
    missing = [str(path) for path in mounted if not path.exists()]
    assert not missing, missing
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in compose["volumes"], volume


def test_prometheus_scrapes_every_worker_and_loads_the_alert_rules(compose):
    service = compose["services"]["prometheus"]
    mounts = bind_mounts(service)
    script = service["command"][0]
    config_path = re.search(r"--config\.file=(\S+)", script)
    assert config_path and mounts[config_path.group(1)] == PROMETHEUS_CONFIG
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert [mounts[path] for path in config["rule_files"]] == [RULES]
    (job,) = config["scrape_configs"]
    # The rules select the job by name.
    assert job["job_name"] == "pushes" and 'job="pushes"' in RULES.read_text()
    assert job["metrics_path"] == "/metrics"
    targets = {t for static in job["static_configs"] for t in static["targets"]}
    assert targets == {f"{name}:{worker_settings(compose, name).web_port}" for name in WORKERS}
    # /metrics takes the workers' API token: the entrypoint writes it where the config reads it.
    assert job["authorization"]["type"] == "Bearer"
    assert f"> {job['authorization']['credentials_file']}" in script
    for name in WORKERS:
        worker_token = compose["services"][name]["environment"]["PUSHES_API_TOKEN"]
        assert service["environment"]["PUSHES_API_TOKEN"] == worker_token
    assert set(service["depends_on"]) == set(WORKERS)


def test_grafana_provisions_the_prometheus_datasource_and_the_dashboard(compose):
    service = compose["services"]["grafana"]
    mounts = bind_mounts(service)
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    (datasource,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].split(":")[-1]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "pushes.yml").read_text()
    )["providers"]
    assert provider["type"] == "file"
    assert mounts[f"{provider['options']['path']}/{DASHBOARD.name}"] == DASHBOARD
    home = service["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert mounts[home] == DASHBOARD
    assert dashboard_datasource_uids(load_dashboard()) == {datasource["uid"]}


def dashboard_datasource_uids(node: Any) -> set[str]:
    """Every datasource uid named anywhere in the dashboard."""
    if isinstance(node, dict):
        found = set()
        if isinstance(node.get("datasource"), dict):
            found.add(node["datasource"]["uid"])
        for value in node.values():
            found |= dashboard_datasource_uids(value)
        return found
    if isinstance(node, list):
        return set().union(*(dashboard_datasource_uids(v) for v in node)) if node else set()
    return set()


def test_the_dashboard_is_valid_json_with_unique_panels_each_with_a_query():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = dashboard["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        exprs = [t["expr"] for t in panel["targets"]]
        assert exprs and all(e.strip() for e in exprs), panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def all_expressions() -> list[str]:
    return rule_expressions() + dashboard_expressions(load_dashboard())


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up == 0", {"up"}),
        ('sum by (le, route) (rate(a_bucket{route!="x"}[5m]))', {"a_bucket"}),
        ("b > 1e3 and on (instance, topic) c offset 10m", {"b", "c"}),
        ("d unless ignoring (job) group_left (x) e[$__rate_interval]", {"d", "e"}),
        ('label_replace(f, "dst", "$1", "src", "(.*)")', {"f"}),
        ("histogram_quantile(0.99, sum(rate(g_bucket[1h:5m])) by (le))", {"g_bucket"}),
        ('absent(h{job="pushes"}) or vector(0)', {"h"}),
    ],
)
def test_metric_names_are_read_out_of_promql(expr, names):
    assert promql_metric_names(expr) == names


def test_every_expression_names_metrics_the_right_way():
    for expr in all_expressions():
        assert promql_metric_names(expr), f"no metric found in {expr!r}"
    used = used_metric_names()
    assert {n for n in used if not n.startswith("pushes_")} <= PROMETHEUS_SERIES
    for expr in all_expressions():
        # rate() and increase() only over counters and histogram parts, never a gauge.
        for name in re.findall(r"\b(?:rate|irate|increase)\(\s*([A-Za-z_:][\w:]*)", expr):
            assert name.endswith(("_total", "_bucket", "_sum", "_count")), (name, expr)
        if "histogram_quantile" in expr:
            assert all(n.endswith("_bucket") for n in promql_metric_names(expr)), expr
            assert re.search(r"by \([^)]*\ble\b", expr), f"no 'by (le)' in {expr!r}"


def app_metrics_text() -> str:
    """What /metrics serves today, with empty tables and no consumer (no Kafka needed)."""
    from app.ops.collectors import LagCollector, TableCollector
    from app.ops.metrics import REGISTRY

    topic = SimpleNamespace(get_topic_name=lambda: "pushes-tokens-changelog")
    fake_app = SimpleNamespace(
        tables={}, assignor=SimpleNamespace(assigned_actives=set), consumer=None
    )
    collectors = CollectorRegistry()
    collectors.register(TableCollector(fake_app, SimpleNamespace(changelog_topic=topic)))
    collectors.register(LagCollector(fake_app))
    collectors.register(_health())
    return (generate_latest(REGISTRY) + generate_latest(collectors)).decode()


def _health() -> Any:
    """The health gauges of a worker that owns one input partition, fetched and committed."""
    from faust.types import TP

    from app.config import Settings
    from app.faust_fixes.commit_clock import CommitTimes
    from app.kafka.membership import GroupWatch
    from app.kafka.probe import BrokerProbe
    from app.ops.health import Health
    from app.ops.readiness import StartupFlags

    tp = TP("payments", 0)
    times = CommitTimes()
    times.on_assigned([tp], 0.0)
    app = SimpleNamespace(
        startup=StartupFlags(),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=SimpleNamespace(is_set=bool))),
        rebalancing=False,
        should_stop=False,
        engine=SimpleNamespace(
            topics=frozenset({"payments"}),
            intake=SimpleNamespace(last_response_ms=lambda: 0.0),
        ),
        consumer=SimpleNamespace(assignment=lambda: {tp}, commit_times=times),
    )
    return Health(app, BrokerProbe(Settings()), GroupWatch(), unreachable_after=10.0)


def test_the_files_use_the_apps_metrics_by_their_served_names_and_no_unknown_one():
    text = app_metrics_text()
    served = served_series(text)
    missing = missing_metrics(text)
    # Served names the files use are spelled as served (a histogram by its
    # _bucket series, a counter with _total) ...
    assert (used_metric_names() - PROMETHEUS_SERIES) - missing <= served
    assert {"pushes_notifications_total", "pushes_consumer_lag"} <= served - missing
    # ... and every other name is one announced for the worker, not a typo.
    assert missing <= ANNOUNCED, f"not served and not announced: {sorted(missing - ANNOUNCED)}"


def test_missing_metrics_reads_a_metrics_answer():
    text = "\n".join(
        [
            "# HELP pushes_ready 1 when ready.",
            "# TYPE pushes_ready gauge",
            "pushes_ready 1.0",
            "# HELP pushes_dead_letters_total Records sent to the dead-letter topic.",
            "# TYPE pushes_dead_letters_total counter",
            "# HELP pushes_send_duration_seconds Time to send.",
            "# TYPE pushes_send_duration_seconds histogram",
            'pushes_send_duration_seconds_bucket{le="+Inf"} 0.0',
            "pushes_send_duration_seconds_count 0.0",
            "pushes_send_duration_seconds_sum 0.0",
            "",
        ]
    )
    names = {
        "up",
        "pushes_ready",
        "pushes_dead_letters_total",
        "pushes_send_duration_seconds_bucket",
        "pushes_payments_total",
    }
    # A counter that has not counted yet (TYPE line only) is served; up is Prometheus's own.
    assert missing_metrics(text, names) == {"pushes_payments_total"}
