"""The import order of the code: each layer imports only the layers before it.

    config -> domain -> leaves (topic names, logs, readiness, metrics, senders)
           -> kafka -> faust_fixes, tables.store/scan -> application
           -> table declarations -> streams, api, ops, cli -> main

Each layer is imported in a fresh interpreter, which must then hold no
module of a later layer; the domain must hold no Faust, Kafka client or
RocksDB at all.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import app
import tables

REPO = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, list[str]]] = [
    ("config", ["app", "app.config"]),
    ("domain", ["app.domain*"]),
    (
        "leaves",
        [
            "app.topics",
            "app.notify*",
            "app.ops",
            "app.ops.logs",
            "app.ops.logfilter",
            "app.ops.readiness",
        ],
    ),
    ("metrics", ["app.ops.metrics"]),
    ("kafka", ["app.kafka*"]),
    (
        "fixes and store",
        ["app.faust_fixes*", "tables", "tables.store", "tables.scan", "tables.cache"],
    ),
    ("application", ["app.application"]),
    ("tables", ["tables.tokens", "tables.sent", "tables.pending", "tables.retries"]),
    ("glue", ["app.streams*", "app.api*", "app.ops*", "app.cli*"]),
    ("root", ["app.main"]),
]
NOT_IN_DOMAIN = ("faust", "mode", "aiokafka", "rocksdict", "aiohttp", "prometheus_client")


def all_modules() -> list[str]:
    names = ["app", "tables"]
    for package in (app, tables):
        prefix = package.__name__ + "."
        names += [m.name for m in pkgutil.walk_packages(package.__path__, prefix)]
    return sorted(names)


def layer_of(module: str) -> int:
    """The first layer whose pattern matches ``module`` (``x*`` matches x and below)."""
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            base = pattern.rstrip("*")
            if module == base or (pattern.endswith("*") and module.startswith(base + ".")):
                return index
    raise AssertionError(f"{module} is in no layer; add it to LAYERS")


def imported_by(modules: list[str]) -> list[str]:
    """Every module a fresh interpreter holds after importing ``modules``."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_every_module_has_a_layer():
    for module in all_modules():
        layer_of(module)


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=[name for name, _ in LAYERS])
def test_a_layer_imports_nothing_of_later_layers(index):
    mine = [m for m in all_modules() if layer_of(m) == index]
    assert mine, f"layer {LAYERS[index][0]} has no module"
    loaded = imported_by(mine)
    later = [m for m in loaded if m.split(".")[0] in ("app", "tables") and layer_of(m) > index]
    assert later == [], f"importing {LAYERS[index][0]} loads later layers: {later}"


def test_the_domain_imports_no_framework():
    domain = [m for m in all_modules() if layer_of(m) <= 1]
    loaded = {m.split(".")[0] for m in imported_by(domain)}
    assert not loaded & set(NOT_IN_DOMAIN), sorted(loaded & set(NOT_IN_DOMAIN))
