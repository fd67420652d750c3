"""The join on the real broker, whatever the producers do.

One worker, over topics laid out unlike the table: ``payments`` has 16
partitions and ``push-tokens`` 5, while the table has 8.  Records come from
aiokafka (murmur2), librdkafka (its default partitioner is not murmur2), keyed
by user, by payment id, or not keyed at all.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from app.domain.partitioning import canonical_partition
from tests.integration.harness import Namespace, Worker, notification, payment, produce
from tests.integration.kafka_tools import (
    create_topics,
    dead_letters,
    produce_librdkafka,
    read_topic,
    rewind_group,
)

DLQ_SUFFIX = "-dlq"


@pytest.fixture(scope="module")
def worker(namespace: Namespace, tmp_path_factory: pytest.TempPathFactory):
    create_topics({namespace.payments_topic: 16, namespace.tokens_topic: 5})
    w = Worker(
        namespace,
        tmp_path_factory.mktemp("join"),
        PUSHES_MAX_DEVICES_PER_USER="3",
        PUSHES_DEAD_LETTER_TOPIC=namespace.app_id + DLQ_SUFFIX,
    )
    w.start().wait_ready()
    yield w
    w.stop()


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def token_record(user: str, token: str | None, device: str = "default") -> bytes:
    return json.dumps({"user_id": user, "device_id": device, "token": token}).encode()


def notification_lines(worker: Worker) -> Counter[str]:
    """Each notification text (without the log prefix) and how often it was logged."""
    marker = "send notification to mobile app with token: "
    return Counter(marker + line.split(marker, 1)[1].strip() for line in worker.lines(marker))


def test_every_producer_and_key_choice_finds_the_tokens(worker: Worker, namespace: Namespace):
    users = [uid("mixed") for _ in range(24)]
    tokens = {u: f"tok-{u}-" + uuid.uuid4().hex for u in users}
    # Tokens: a third through the API, a third by librdkafka, a third by aiokafka
    # keyed by something else than the user.
    for u in users[0::3]:
        worker.register(u, tokens[u])
    produce_librdkafka(
        namespace.tokens_topic, [(u.encode(), token_record(u, tokens[u])) for u in users[1::3]]
    )
    produce(namespace.tokens_topic, [(b"x", token_record(u, tokens[u])) for u in users[2::3]])
    for u in users:
        worker.wait_token(u, "default", tokens[u])

    aiokafka_records, librdkafka_records = [], []
    for i, u in enumerate(users):
        by_user = (u.encode(), payment(f"pu-{u}", u))
        by_payment = (f"pay-{i}".encode(), payment(f"pp-{u}", u))
        no_key = (None, payment(f"pn-{u}", u))
        aiokafka_records += [by_user, by_payment, no_key]
        librdkafka_records += [(u.encode(), payment(f"pl-{u}", u, "failed", reason="declined"))]
    produce(namespace.payments_topic, aiokafka_records)
    produce_librdkafka(namespace.payments_topic, librdkafka_records)

    for u in users:
        for pid in (f"pu-{u}", f"pp-{u}", f"pn-{u}"):
            line = notification(tokens[u], f"Payment {pid} of 100.00 RUB succeeded")
            assert len(worker.wait_for(line)) == 1
        line = notification(tokens[u], f"Payment pl-{u} of 100.00 RUB failed: declined")
        assert len(worker.wait_for(line)) == 1
    # This worker owns every table partition, so no record took the hop:
    # each was processed at once on its user's partition.
    for kind in ("tokens", "payments"):
        assert read_topic(f"{namespace.app_id}-{kind}-canonical") == []


def test_every_device_is_notified_and_devices_come_and_go(worker: Worker, namespace: Namespace):
    user = uid("devices")
    tokens = {d: f"{d}-token-" + uuid.uuid4().hex for d in ("phone", "tablet", "watch")}
    for device, token in tokens.items():
        worker.register(user, token, device_id=device)
        worker.wait_token(user, device, token)

    produce(namespace.payments_topic, [(user.encode(), payment(f"p1-{user}", user))])
    for token in tokens.values():
        worker.wait_for(notification(token, f"Payment p1-{user} of 100.00 RUB succeeded"))

    # A fourth device with a limit of 3 evicts the oldest: the phone.
    laptop = "laptop-token-" + uuid.uuid4().hex
    worker.register(user, laptop, device_id="laptop")
    worker.wait_token(user, "laptop", laptop)
    worker.wait_for(f"user {user} has over 3 devices: evicted device phone, the oldest")
    # One removed over HTTP, one by a null token on the topic.
    status, _ = worker.request("DELETE", f"/tokens/{user}/tablet")
    assert status == 202
    produce_librdkafka(namespace.tokens_topic, [(None, token_record(user, None, "watch"))])
    worker.wait_token(user, "tablet", None)
    worker.wait_token(user, "watch", None)

    produce(namespace.payments_topic, [(user.encode(), payment(f"p2-{user}", user))])
    worker.wait_for(notification(laptop, f"Payment p2-{user} of 100.00 RUB succeeded"))
    assert worker.lines(f"Payment p2-{user} ") == [
        line for line in worker.lines(laptop) if f"p2-{user}" in line
    ]

    # The last device removed: the user leaves the table.
    assert worker.request("DELETE", f"/tokens/{user}/laptop")[0] == 202
    worker.wait_token(user, "laptop", None)
    assert worker.request("GET", f"/tokens/{user}")[0] == 404


def test_duplicates_from_any_producer_notify_once(worker: Worker, namespace: Namespace):
    user = uid("dup")
    tokens = {d: f"dup-{d}-" + uuid.uuid4().hex for d in ("a", "b")}
    for device, token in tokens.items():
        worker.register(user, token, device_id=device)
        worker.wait_token(user, device, token)
    body = payment(f"p-{user}", user)
    # The same event three times, on different partitions, then its failure.
    produce(namespace.payments_topic, [(user.encode(), body), (b"other-key", body)])
    produce_librdkafka(namespace.payments_topic, [(user.encode(), body)])
    failed = payment(f"p-{user}", user, "failed", reason="reversed")
    produce(namespace.payments_topic, [(user.encode(), failed)])

    for token in tokens.values():
        worker.wait_for(notification(token, f"Payment p-{user} of 100.00 RUB failed: reversed"))
    for token in tokens.values():
        succeeded = notification(token, f"Payment p-{user} of 100.00 RUB succeeded")
        assert len(worker.lines(succeeded)) == 1


def test_a_late_token_within_grace_gets_its_payments_in_order(worker: Worker, namespace: Namespace):
    user, token = uid("late"), "late-token-" + uuid.uuid4().hex
    first, second = payment(f"l1-{user}", user), payment(f"l2-{user}", user, "failed")
    produce(namespace.payments_topic, [(user.encode(), first), (user.encode(), second)])
    worker.wait_for(f"no push token for user {user} yet: payment l2-{user} (failed) waits")

    worker.register(user, token)
    lines = worker.wait_for(f"and message: Payment l2-{user} ")
    everything = worker.lines(token)
    assert [line.split("and message: ")[1].strip() for line in everything] == [
        f"Payment l1-{user} of 100.00 RUB succeeded",
        f"Payment l2-{user} of 100.00 RUB failed",
    ]
    assert len(lines) == 1


def test_a_payment_older_than_the_grace_period_is_dropped(worker: Worker, namespace: Namespace):
    user, token = uid("too-late"), "too-late-token-" + uuid.uuid4().hex
    old = (datetime.now(timezone.utc) - timedelta(minutes=20)).isoformat()
    # A recent payment first moves the user's partition clock to now.
    produce(
        namespace.payments_topic,
        [
            (user.encode(), payment(f"new-{user}", user)),
            (user.encode(), payment(f"old-{user}", user, occurred_at=old)),
        ],
    )
    worker.wait_for(f"no push token for user {user}: payment old-{user} (succeeded) not notified")
    worker.register(user, token)
    worker.wait_for(notification(token, f"Payment new-{user} of 100.00 RUB succeeded"))
    assert worker.lines(f"Payment old-{user} ") == []


BAD_PAYMENTS = [
    b"\xff\xfe not utf-8",
    b"{not json",
    b'{"payment_id": "p", "user_id": 1}',
    b'{"payment_id": "p", "user_id": 1, "status": "refunded", "amount": 1, "currency": "EUR"}',
    b'{"payment_id": "p", "user_id": [1], "status": "failed", "amount": 1, "currency": "EUR"}',
    json.dumps({"payment_id": "p", "user_id": 1, "pad": "x" * 70_000}).encode(),
]
BAD_TOKENS = [b"[]", b'{"user_id": "", "token": "t"}', b'{"user_id": "u", "token": 5}']


def test_bad_records_go_to_the_dead_letter_topic_once(worker: Worker, namespace: Namespace):
    dlq = namespace.app_id + DLQ_SUFFIX
    produce(namespace.payments_topic, [(b"bad-key", value) for value in BAD_PAYMENTS])
    produce(namespace.tokens_topic, [(None, value) for value in BAD_TOKENS])
    worker.wait_for("dead-lettered invalid record", count=len(BAD_PAYMENTS) + len(BAD_TOKENS))

    letters = dead_letters(dlq)
    by_source = Counter(
        (d["source"]["topic"], d["source"]["partition"], d["source"]["offset"]) for d in letters
    )
    assert len(letters) == len(BAD_PAYMENTS) + len(BAD_TOKENS)
    assert set(by_source.values()) == {1}
    import base64

    values = sorted(base64.b64decode(d["value_base64"]) for d in letters)
    assert values == sorted(BAD_PAYMENTS + BAD_TOKENS)
    codes = Counter(d["reason_code"] for d in letters)
    assert codes == Counter(
        {
            "not_utf8": 1,
            "not_json": 1,
            "missing_field": 1,
            "unknown_status": 1,
            "bad_user_id": 2,
            "too_large": 1,
            "not_object": 1,
            "wrong_type": 1,
        }
    )
    assert all(d["reason"] and d["dead_lettered_at"] for d in letters)
    # The worker is still processing.
    user, token = uid("after-dlq"), "after-dlq-" + uuid.uuid4().hex
    worker.register(user, token)
    worker.wait_token(user, "default", token)
    produce(namespace.payments_topic, [(user.encode(), payment(f"p-{user}", user))])
    worker.wait_for(notification(token, f"Payment p-{user} of 100.00 RUB succeeded"))


def sentinel_users(count: int = 8) -> list[str]:
    """Users whose canonical partitions cover all 8 table partitions."""
    users: dict[int, str] = {}
    while len(users) < count:
        u = uid("sentinel")
        users.setdefault(canonical_partition(u, 8), u)
    return list(users.values())


def test_a_replay_from_the_start_sends_nothing_twice(worker: Worker, namespace: Namespace):
    """Last in this module: rewinds everything and restarts the worker twice."""
    before = notification_lines(worker)
    letters_before = len(dead_letters(namespace.app_id + DLQ_SUFFIX))
    assert before and set(before.values()) == {1}

    for wipe in (False, True):
        worker.stop()
        if wipe:  # and a second time from the changelog alone
            shutil.rmtree(worker.datadir)
        for topic in (namespace.payments_topic, f"{namespace.app_id}-payments-canonical"):
            rewind_group(namespace.app_id, topic)
        worker.start().wait_ready()

        # Fresh payments on every canonical partition come after the replay.
        sentinels = sentinel_users()
        tokens = {u: f"sentinel-{u}" for u in sentinels}
        for u in sentinels:
            worker.register(u, tokens[u])
        for u in sentinels:
            worker.wait_token(u, "default", tokens[u])
        produce(namespace.payments_topic, [(u.encode(), payment(f"s-{u}", u)) for u in sentinels])
        for u in sentinels:
            worker.wait_for(notification(tokens[u], f"Payment s-{u} of 100.00 RUB succeeded"))

        after = notification_lines(worker)
        assert set(after.values()) == {1}, [line for line, n in after.items() if n > 1]
        assert len(after) == len(before) + len(sentinels)
        assert len(dead_letters(namespace.app_id + DLQ_SUFFIX)) == letters_before
        before = after
