"""Schemathesis fuzzes a secured worker against the OpenAPI document it serves.

Every check is on: no 5xx, status codes, content types, headers and bodies as
documented, invalid input refused, valid input accepted, auth enforced, and
stateful sequences (register, read, delete) through the document's links.
Bounded and seeded, so a run is repeatable and takes well under a minute.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Namespace, Worker, fetch

API_TOKEN = "fuzz-" + uuid.uuid4().hex
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 100
SEED = 20261127


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(
        Namespace.fresh(),
        tmp_path_factory.mktemp("fuzz"),
        PUSHES_API_TOKEN=API_TOKEN,
        PUSHES_ADMIN_TOKEN="admin-" + uuid.uuid4().hex,
    )
    w.start().wait_ready()
    yield w
    w.stop()


def test_the_api_survives_fuzzing_and_keeps_to_its_document(secured: Worker, tmp_path: Path):
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{secured.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {API_TOKEN}",
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            "--request-timeout",
            "30",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps its example database in the working dir
    )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "No issues found" in run.stdout, report
    # The worker is still up and well after all of it.
    assert fetch(secured.url + "/readyz")[0] == 200
    assert secured.proc is not None and secured.proc.poll() is None
    assert not secured.lines("unexpected "), secured.lines("unexpected ")
