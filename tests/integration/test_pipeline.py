"""The whole pipeline on the real broker: HTTP -> tokens topic -> table; payment -> line."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.integration.harness import Namespace, Worker, notification, payment, produce


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_registered_user_is_notified(worker: Worker, namespace: Namespace):
    user, token = uid("user"), "bk3RNwTe3H0:" + uuid.uuid4().hex * 3
    answer = worker.register(user, token)
    assert answer["status"] == "registered" and answer["user_id"] == user
    worker.wait_token(user, "default", token)

    produce(namespace.payments_topic, [(user.encode(), payment("p-ok-" + user, user))])

    line = notification(token, f"Payment p-ok-{user} of 100.00 RUB succeeded")
    assert len(worker.wait_for(line)) == 1


def test_integer_user_id_and_failure_reason(worker: Worker, namespace: Namespace):
    user = int(uuid.uuid4().int % 10**12)
    token = "int-user-token-" + uuid.uuid4().hex
    worker.register(user, token)  # an integer on the API...
    worker.wait_token(str(user), "default", token)
    body = payment(f"p-int-{user}", str(user), "failed", amount=12.5, reason="card expired")
    produce(namespace.payments_topic, [(str(user).encode(), body)])  # ...a string here

    worker.wait_for(notification(token, f"Payment p-int-{user} of 12.50 RUB failed: card expired"))


def test_payment_keyed_by_payment_id_or_without_key_finds_the_tokens(
    worker: Worker, namespace: Namespace
):
    users = [uid("hop") for _ in range(6)]
    tokens = {u: "hop-token-" + uuid.uuid4().hex for u in users}
    for u in users:
        worker.register(u, tokens[u])
    for u in users:
        worker.wait_token(u, "default", tokens[u])

    records = []
    for i, u in enumerate(users):
        key = None if i % 2 else f"pay-{u}".encode()
        records.append((key, payment(f"pk-{u}", u)))
    produce(namespace.payments_topic, records)

    for u in users:
        worker.wait_for(notification(tokens[u], f"Payment pk-{u} of 100.00 RUB succeeded"))


def test_unknown_user_gets_no_notification(worker: Worker, namespace: Namespace):
    user = uid("nobody")
    produce(namespace.payments_topic, [(user.encode(), payment(f"p-{user}", user))])

    # With the default late-token grace period, the payment waits for a token.
    worker.wait_for(f"no push token for user {user} yet: payment p-{user} (succeeded) waits")
    assert worker.lines(f"and message: Payment p-{user} ") == []


def test_second_registration_of_a_device_replaces_the_first(worker: Worker, namespace: Namespace):
    user = uid("replace")
    old, new = "old-token-" + uuid.uuid4().hex, "new-token-" + uuid.uuid4().hex
    worker.register(user, old, device_id="phone")
    worker.wait_token(user, "phone", old)
    worker.register(user, new, device_id="phone")
    worker.wait_token(user, "phone", new)

    produce(namespace.payments_topic, [(user.encode(), payment(f"p-{user}", user))])

    worker.wait_for(notification(new, f"Payment p-{user} of 100.00 RUB succeeded"))
    assert worker.lines(old) == []
    status, answer = worker.request("GET", f"/tokens/{user}")
    assert status == 200 and [d["device_id"] for d in answer["devices"]] == ["phone"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"{", "application/json", 400, "not valid JSON"),
        (b"[1, 2]", "application/json", 400, "JSON object"),
        (b'{"token": "t"}', "application/json", 400, "user_id"),
        (b'{"user_id": "u"}', "application/json", 400, "token is required"),
        (b'{"user_id": true, "token": "t"}', "application/json", 400, "user_id"),
        (b'{"user_id": "u", "token": ""}', "application/json", 400, "token must not be empty"),
        (b'{"user_id": "u", "token": 7}', "application/json", 400, "token must be a string"),
        (b"\xff\xfe", "application/json", 400, "UTF-8"),
        (b'{"user_id": "u", "token": "t"}', "text/plain", 415, "must be JSON"),
        (b"x" * 20000, "application/json", 413, "byte limit"),
    ],
)
def test_malformed_bodies_get_a_json_error(worker: Worker, body, content_type, status, reason):
    got, answer = worker.request("POST", "/tokens", body, content_type)
    assert got == status
    assert reason in answer["error"]


def test_worker_is_unaffected_by_malformed_requests_and_records(
    worker: Worker, namespace: Namespace
):
    for body in (b"{", b"null", b'{"user_id": [], "token": {}}'):
        assert worker.request("POST", "/tokens", body)[0] == 400
    produce(
        namespace.payments_topic,
        [(b"bad", b"\xff not utf-8"), (b"bad", b"{}"), (b"bad", json.dumps({"x": 1}).encode())],
    )
    worker.wait_for("dead-lettered invalid record " + namespace.payments_topic, count=3)

    user, token = uid("after-bad"), "after-bad-token-" + uuid.uuid4().hex
    worker.register(user, token)
    worker.wait_token(user, "default", token)
    produce(namespace.payments_topic, [(user.encode(), payment(f"p-{user}", user))])
    worker.wait_for(notification(token, f"Payment p-{user} of 100.00 RUB succeeded"))
    assert worker.proc is not None and worker.proc.poll() is None


def test_unknown_user_lookup_is_404(worker: Worker):
    status, answer = worker.request("GET", f"/tokens/{uid('ghost')}")
    assert status == 404 and "no devices" in answer["error"]


def test_delete_removes_the_device(worker: Worker, namespace: Namespace):
    user, token = uid("delete"), "delete-token-" + uuid.uuid4().hex
    worker.register(user, token, device_id="tablet")
    worker.wait_token(user, "tablet", token)
    status, answer = worker.request("DELETE", f"/tokens/{user}/tablet")
    assert status == 202 and answer["status"] == "removed"
    worker.wait_token(user, "tablet", None)
    assert worker.request("GET", f"/tokens/{user}")[0] == 404
    produce(namespace.payments_topic, [(user.encode(), payment(f"p-{user}", user))])
    worker.wait_for(f"no push token for user {user} yet: payment p-{user}")
