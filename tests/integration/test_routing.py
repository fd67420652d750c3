"""Two real workers: ``GET /tokens/{user_id}`` answers on either, routed to the owner.

Each worker advertises ``PUSHES_CANONICAL_URL``; the router, the topic and the
table hash the same raw key bytes, so a request for a user owned by the other
worker is forwarded there (with its bearer token and admin header) and never
bounced back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from app.domain.partitioning import canonical_partition
from tests.integration.harness import Namespace, Worker

pytestmark = pytest.mark.slow

PARTITIONS = 8
API_TOKEN = "route-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Worker, Worker]]:
    namespace, workdir = Namespace.fresh(), tmp_path_factory.mktemp("routing")
    workers = []
    for name in ("w1", "w2"):
        w = Worker(
            namespace, workdir, name, PUSHES_API_TOKEN=API_TOKEN, PUSHES_ADMIN_TOKEN=ADMIN_TOKEN
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
    assert w2.request("GET", f"/tokens/{user}", headers={"Authorization": "Bearer no"})[0] == 403
    assert w2.request("GET", f"/tokens/{user}", headers={"X-Admin-Token": "guess"})[0] == 403
