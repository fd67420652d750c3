"""The deployment files agree with the app: docker/compose.yaml, the Dockerfile, the Procfile.

There is no Docker engine here, so the files are read and held to the app's
own configuration: image versions, services, env names, topics, volumes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings
from app.kafka.admin import required_topics

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
LOCK = REPO / "docker" / "requirements.lock"
WORKERS = ("worker-1", "worker-2")


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


def test_services_are_kafka_topics_and_two_workers(compose):
    assert set(compose["services"]) == {"kafka", "topics", *WORKERS}


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
