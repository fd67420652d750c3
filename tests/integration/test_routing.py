"""Two real workers: ``GET /tokens/{user_id}`` answers on either, routed to the owner.

Each worker advertises ``PUSHES_CANONICAL_URL``; the router, the topic and the
table hash the same raw key bytes, so a request for a user owned by the other
worker is forwarded there (with its bearer token and admin header) and never
bounced back.  Both workers also accept user JWTs from one local JWKS server:
a user's JWT is checked before routing and again by the owner.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from app.api import refusals as r
from app.domain.partitioning import canonical_partition
from tests.integration.harness import Namespace, Worker, fetch, masked
from tests.jwks_server import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    SigningKey,
    ThreadedJwksServer,
    claims,
)

pytestmark = pytest.mark.slow

PARTITIONS = 8
API_TOKEN = "route-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def user_key() -> SigningKey:
    return SigningKey.ec("route-ec")


@pytest.fixture(scope="module")
def jwks(user_key: SigningKey) -> Iterator[JwksServer]:
    with ThreadedJwksServer(user_key) as server:
        yield server


@pytest.fixture(scope="module")
def pair(
    jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Worker, Worker]]:
    namespace, workdir = Namespace.fresh(), tmp_path_factory.mktemp("routing")
    workers = []
    for name in ("w1", "w2"):
        w = Worker(
            namespace,
            workdir,
            name,
            PUSHES_API_TOKEN=API_TOKEN,
            PUSHES_ADMIN_TOKEN=ADMIN_TOKEN,
            PUSHES_USER_JWKS_URL=jwks.url,
            PUSHES_USER_JWT_ISSUER=ISSUER,
            PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
        )
        w.env["PUSHES_CANONICAL_URL"] = w.url
        w.headers = {"Authorization": f"Bearer {API_TOKEN}"}
        workers.append(w)
    try:
        for w in workers:
            w.start().wait_ready()
        yield workers[0], workers[1]
    finally:
        for w in workers:
            w.stop()


def owned_partitions(worker: Worker) -> set[int]:
    status, stats = worker.request("GET", "/stats")
    assert status == 200, stats
    assert stats["worker"] == worker.url
    return {p["partition"] for p in stats["partitions"]}


def wait_split(w1: Worker, w2: Worker, timeout: float = 120.0) -> tuple[set[int], set[int]]:
    """Wait until the two workers share the partitions between them."""
    deadline = time.monotonic() + timeout
    while True:
        if all(w.request("GET", "/readyz")[0] == 200 for w in (w1, w2)):
            p1, p2 = owned_partitions(w1), owned_partitions(w2)
            if p1 and p2 and not p1 & p2 and p1 | p2 == set(range(PARTITIONS)):
                return p1, p2
        if time.monotonic() > deadline:
            raise AssertionError("the workers never split the partitions")
        time.sleep(0.5)


def users_on(partitions: set[int], count: int) -> list[str]:
    users: list[str] = []
    while len(users) < count:
        user = f"route-{uuid.uuid4().hex[:8]}"
        if canonical_partition(user, PARTITIONS) in partitions:
            users.append(user)
    return users


def test_each_worker_answers_for_users_the_other_owns(pair: tuple[Worker, Worker]):
    w1, w2 = pair
    p1, p2 = wait_split(w1, w2)
    owned = {w1.name: users_on(p1, 4), w2.name: users_on(p2, 4)}
    tokens = {u: f"route-token-{uuid.uuid4().hex}" for us in owned.values() for u in us}
    for user, token in tokens.items():
        w1.register(user, token)

    for owner, other in ((w1, w2), (w2, w1)):
        for user in owned[owner.name]:
            token = tokens[user]
            other.wait_token(user, "default", token)  # answered through the owner
            status, answer = other.request(
                "GET", f"/tokens/{user}", headers={"X-Admin-Token": ADMIN_TOKEN}
            )
            assert (status, answer["devices"][0]["token"]) == (200, token)
        # An unknown user of the other worker: the owner's 404 comes back as is.
        (ghost,) = users_on({canonical_partition(owned[owner.name][0], PARTITIONS)}, 1)
        status, answer = other.request("GET", f"/tokens/{ghost}")
        assert status == 404 and ghost in answer["error"]

    # Each worker holds only its own users, so every 200 above from the other
    # worker was answered by the owner.
    for w in (w1, w2):
        assert w.request("GET", "/stats")[1]["users"] == 4


def test_credentials_are_checked_before_routing(pair: tuple[Worker, Worker]):
    w1, w2 = pair
    p1, _ = wait_split(w1, w2)
    (user,) = users_on(p1, 1)  # owned by w1, asked on w2
    # Neither the service token nor a JWT: 401 (with user JWTs on, it could be a broken JWT).
    status, answer = w2.request("GET", f"/tokens/{user}", headers={"Authorization": "Bearer no"})
    assert (status, answer["code"]) == (401, r.MALFORMED_TOKEN)
    assert w2.request("GET", f"/tokens/{user}", headers={"X-Admin-Token": "guess"})[0] == 403


def owner_get_200s(worker: Worker) -> float:
    """How many ``GET /tokens/{user_id}`` the worker answered 200 (its /metrics)."""
    status, _, body = fetch(worker.url + "/metrics", headers=worker.headers)
    assert status == 200
    wanted = {'route="/tokens/{user_id}"', 'method="GET"', 'status="200"'}
    for line in body.decode().splitlines():
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        if name == "pushes_http_requests_total" and set(labels.rstrip("}").split(",")) == wanted:
            return float(value)
    return 0.0


def test_a_user_jwt_reads_its_own_devices_through_the_other_worker(
    pair: tuple[Worker, Worker], user_key: SigningKey
):
    w1, w2 = pair
    p1, _ = wait_split(w1, w2)
    user, other = users_on(p1, 2)  # owned by w1, asked on w2
    token = f"route-token-{uuid.uuid4().hex}"
    w1.register(user, token)
    w2.wait_token(user, "default", token)  # the service, routed
    jwt = {"Authorization": f"Bearer {user_key.sign(claims(user))}"}
    served_by_owner = owner_get_200s(w1)
    status, answer = w2.request("GET", f"/tokens/{user}", headers=jwt)
    assert status == 200 and answer["devices"][0]["token"] == masked(token)
    # The owner answered it, past its own guard, with the user's JWT.
    assert owner_get_200s(w1) == served_by_owner + 1
    # Another user's devices are refused on w2, before any routing.
    status, answer = w2.request("GET", f"/tokens/{other}", headers=jwt)
    assert (status, answer["code"]) == (403, r.USER_MISMATCH)
    # A user never unmasks, routed or not.
    status, answer = w2.request(
        "GET", f"/tokens/{user}", headers={**jwt, "X-Admin-Token": ADMIN_TOKEN}
    )
    assert (status, answer["code"]) == (403, r.USER_CANNOT_UNMASK)
