"""Bulk restore on the real broker: a worker's tables come back from the changelog.

The copy (``tables.restore``) must bring back exactly what Faust's recovery
would: the last value of every key, tombstones as deletions, and only the
records after the offset the local database already has.
"""

from __future__ import annotations

import shutil
import uuid

import pytest

from tests.integration.harness import Namespace, Worker, masked, notification, payment, produce
from tests.integration.kafka_tools import read_topic

COPIED = "Bulk restore of table tokens: "
FAUST_RESTORES = "Restoring state from changelog topics"


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def assert_table_holds(worker: Worker, users: dict[str, str]) -> None:
    """Each user has its one token, served at once; a user with ``""`` has none."""
    for user, token in users.items():
        assert worker.devices(user) == ({"default": masked(token)} if token else None), user


def restart(worker: Worker, wipe: bool) -> str:
    """Stop and start the worker; return its output from this start on."""
    worker.stop()
    if wipe:
        shutil.rmtree(worker.datadir)
    before = len(worker.output())
    worker.start().wait_ready()
    return worker.output()[before:]


def copied_records(output: str) -> int:
    """The record count of the tokens table's finished copy in ``output``."""
    done = [line for line in output.splitlines() if COPIED in line and "copied in" in line]
    assert len(done) == 1, output[-3000:]
    return int(done[0].split(COPIED)[1].split(" records")[0].replace(",", ""))


@pytest.fixture(scope="module")
def users(worker: Worker) -> dict[str, str]:
    """Users with one token each, one user with a second device, and one deleted user."""
    tokens = {uid("kept"): "kept-token-" + uuid.uuid4().hex for _ in range(16)}
    for user, token in tokens.items():
        worker.register(user, token)
    for user, token in tokens.items():
        worker.wait_token(user, "default", token)
    gone = uid("gone")
    gone_token = "gone-token-" + uuid.uuid4().hex
    worker.register(gone, gone_token, device_id="tablet")
    worker.wait_token(gone, "tablet", gone_token)
    status, _ = worker.request("DELETE", f"/tokens/{gone}/tablet")
    assert status == 202
    worker.wait_token(gone, "tablet", None)
    tokens[gone] = ""
    return tokens


def test_a_wiped_worker_copies_the_whole_changelog_back(
    worker: Worker, namespace: Namespace, users: dict[str, str]
):
    changelog = read_topic(f"{namespace.app_id}-tokens-changelog")
    assert any(r.value is None for r in changelog)  # the deleted user's tombstone

    output = restart(worker, wipe=True)

    assert copied_records(output) == len(changelog)
    assert FAUST_RESTORES not in output  # Faust found nothing left to read
    assert_table_holds(worker, users)
    user = next(u for u, t in users.items() if t)
    produce(namespace.payments_topic, [(user.encode(), payment(f"p-{user}", user))])
    worker.wait_for(notification(users[user], f"Payment p-{user} of 100.00 RUB succeeded"))


def test_a_copy_survives_a_crash_right_after_it(worker: Worker, users: dict[str, str]):
    """The copy skips RocksDB's write-ahead log, so it must be flushed before it ends."""
    restart(worker, wipe=True)
    worker.kill()
    output = restart(worker, wipe=False)

    assert COPIED not in output  # nothing lost: nothing to copy again
    assert_table_holds(worker, users)


def test_a_restart_copies_only_what_the_database_lacks(
    worker: Worker, namespace: Namespace, users: dict[str, str]
):
    """Records another worker wrote meanwhile: a new user, and a user deleted."""
    changelog = f"{namespace.app_id}-tokens-changelog"
    source, deleted = [u for u, t in users.items() if t][:2]
    value = next(r.value for r in read_topic(changelog) if r.key == source.encode())
    clone = uid("clone")

    worker.stop()
    produce(changelog, [(clone.encode(), value), (deleted.encode(), None)])
    output = restart(worker, wipe=False)

    assert copied_records(output) == 2
    assert FAUST_RESTORES not in output
    assert worker.devices(clone) == {"default": masked(users[source])}
    assert worker.devices(deleted) is None
    assert worker.devices(source) == {"default": masked(users[source])}
    users[deleted] = ""


def test_faust_recovery_alone_restores_the_same_table(
    worker: Worker, namespace: Namespace, users: dict[str, str]
):
    """``PUSHES_BULK_RESTORE=false``: Faust's own recovery, same result."""
    worker.env["PUSHES_BULK_RESTORE"] = "false"
    try:
        output = restart(worker, wipe=True)
    finally:
        worker.env.pop("PUSHES_BULK_RESTORE")

    assert COPIED not in output and FAUST_RESTORES in output
    assert_table_holds(worker, users)
