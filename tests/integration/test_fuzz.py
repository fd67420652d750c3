"""Schemathesis fuzzes secured workers against the OpenAPI document each serves.

Every check is on: no 5xx, status codes, content types, headers and bodies as
documented, invalid input refused, valid input accepted, auth enforced, and
stateful sequences (register, read, delete) through the document's links.
Bounded and seeded, so a run is repeatable and takes well under a minute.

Two workers: one with the service token only, and one with auth fully on
(the service token and user JWTs from a local JWKS server), fuzzed once as
the service and once with a user's JWT.  That one's abuse limits are raised
to their maximum: the fuzzer sends thousands of requests from one address,
most of them refused on purpose (no credentials, another user), and a 429 on
every later one would hide what the fuzzer is looking for.  The limits
themselves are tested in test_user_auth.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Namespace, Worker, fetch
from tests.jwks_server import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    SigningKey,
    ThreadedJwksServer,
    claims,
)

API_TOKEN = "fuzz-" + uuid.uuid4().hex
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
MAX_EXAMPLES = 100
SEED = 20261127
#: What a user JWT may never call: 403 service_only, whatever the request.
SERVICE_ENDPOINTS = frozenset({"GET /", "GET /metrics", "GET /stats"})


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


@pytest.fixture(scope="module")
def user_key() -> SigningKey:
    return SigningKey.rsa("fuzz-rsa")


@pytest.fixture(scope="module")
def jwks(user_key: SigningKey) -> Iterator[JwksServer]:
    with ThreadedJwksServer(user_key) as server:
        yield server


@pytest.fixture(scope="module")
def auth_on(jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(
        Namespace.fresh(),
        tmp_path_factory.mktemp("fuzz-auth"),
        PUSHES_API_TOKEN=API_TOKEN,
        PUSHES_ADMIN_TOKEN="admin-" + uuid.uuid4().hex,
        PUSHES_USER_JWKS_URL=jwks.url,
        PUSHES_USER_JWT_ISSUER=ISSUER,
        PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
        PUSHES_REQUIRE_AUTH="true",
        PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE="1000000",
        PUSHES_REGISTRATIONS_PER_USER_PER_HOUR="100000",
    )
    w.start().wait_ready()
    yield w
    w.stop()


def fuzz(
    worker: Worker, workdir: Path, authorization: str, refused: frozenset[str] = frozenset()
) -> None:
    """Run every check against ``worker`` with ``authorization``; fail on any issue.

    ``refused``: the operations (``"GET /stats"``) this caller may never call;
    schemathesis warns that they answered only 401/403, and must name exactly these.
    """
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{worker.url}/openapi.json",
            "--header",
            f"Authorization: {authorization}",
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
        cwd=workdir,  # schemathesis keeps its example database in the working dir
    )
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    counts = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert counts and counts.group(1) == counts.group(2) != "0", report
    if refused:
        assert auth_warned(run.stdout) == refused, report
    else:
        assert "No issues found" in run.stdout, report
    # The worker is still up and well after all of it.
    assert fetch(worker.url + "/readyz")[0] == 200
    assert worker.proc is not None and worker.proc.poll() is None
    assert not worker.lines("unexpected "), worker.lines("unexpected ")


def auth_warned(report: str) -> frozenset[str]:
    """The operations schemathesis says returned only 401/403 responses."""
    section = report.partition("Authentication failed:")[2].partition("💡")[0]
    return frozenset(re.findall(r"^\s+- ([A-Z]+ \S+)$", section, re.M))


def test_the_api_survives_fuzzing_and_keeps_to_its_document(secured: Worker, tmp_path: Path):
    fuzz(secured, tmp_path, f"Bearer {API_TOKEN}")


def test_with_user_jwts_on_the_service_survives_fuzzing(auth_on: Worker, tmp_path: Path):
    fuzz(auth_on, tmp_path, f"Bearer {API_TOKEN}")


def test_with_user_jwts_on_a_user_survives_fuzzing(
    auth_on: Worker, jwks: JwksServer, user_key: SigningKey, tmp_path: Path
):
    # Valid for the whole run; the fuzzer picks user ids, so most answers are 403.
    jwt = user_key.sign(claims("fuzz-user", exp=int(time.time()) + 3600))
    fuzz(auth_on, tmp_path, f"Bearer {jwt}", refused=SERVICE_ENDPOINTS)
    assert jwks.fetches >= 1
