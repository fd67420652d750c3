"""FcmSender <-> the fake FCM, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jwt
import pytest

from app.notify.base import Delivery, Outcome, with_deadline
from app.notify.fake_fcm import FCM_SCOPE, GOOGLE_TOKEN_URI, FakeFcm
from app.notify.fcm import FcmConfigError, FcmSender, build_message

REPO = Path(__file__).resolve().parents[3]


def delivery(n: int = 0, **changes) -> Delivery:
    base = {
        "user_id": str(40 + n),
        "device_id": f"d-{n}",
        "token": f"token-{n}:APA91b{n:04d}",
        "platform": "android" if n % 2 else "ios",
        "title": "Payment",
        "body": f"Payment p-{n} of 100.00 RUB succeeded",
        "payment_id": f"p-{n}",
        "status": "succeeded",
        "amount": "100.00",
        "currency": "RUB",
    }
    return Delivery(**{**base, **changes})


class Recorder:
    """A SenderObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.outcomes: list[tuple[str, Outcome, float]] = []
        self.in_flight: list[int] = []
        self.refreshes: list[str] = []

    def on_outcome(self, sender, outcome, duration_s):
        self.outcomes.append((sender, outcome, duration_s))

    def on_in_flight(self, sender, in_flight):
        self.in_flight.append(in_flight)

    def on_credential_refresh(self, sender, result, duration_s):
        self.refreshes.append(result)


@pytest.fixture
async def fake() -> AsyncIterator[FakeFcm]:
    async with FakeFcm() as server:
        yield server


@pytest.fixture
def key_file(fake: FakeFcm, tmp_path: Path) -> Path:
    path = tmp_path / "sa.json"
    fake.write_service_account(path, "proj-1")
    return path


@contextlib.asynccontextmanager
async def started(sender: FcmSender) -> AsyncIterator[FcmSender]:
    await sender.start()
    try:
        yield sender
    finally:
        await sender.close()


def sender_for(fake: FakeFcm, key_file: Path, **settings) -> FcmSender:
    settings.setdefault("connect_timeout_s", 1.0)
    settings.setdefault("read_timeout_s", 2.0)
    return FcmSender(key_file, base_url=fake.base_url, **settings)


async def test_delivered(fake, key_file):
    recorder = Recorder()
    d = delivery(1)
    async with started(sender_for(fake, key_file, observer=recorder)) as sender:
        (outcome,) = await sender.send([d])
    assert outcome.kind == "delivered"
    (accepted,) = fake.accepted
    assert outcome.message_id == accepted.name
    assert accepted.project == "proj-1"
    assert accepted.message["token"] == d.token
    assert accepted.message["data"]["payment_id"] == d.payment_id
    assert fake.token_requests == 1
    assert [o for _, o, _ in recorder.outcomes] == [outcome]
    assert recorder.in_flight == [1, 0]
    assert recorder.refreshes == ["ok"]


async def test_outcomes_come_back_in_delivery_order(fake, key_file):
    gone = [delivery(n).token for n in (2, 5)]
    fake.set_script(unregistered_tokens=gone, latency_s=0.01)
    deliveries = [delivery(n) for n in range(8)]
    async with started(sender_for(fake, key_file)) as sender:
        outcomes = await sender.send(deliveries)
    kinds = ["token_gone" if d.token in gone else "delivered" for d in deliveries]
    assert [o.kind for o in outcomes] == kinds
    assert {a.message["token"] for a in fake.accepted} == {
        d.token for d in deliveries if d.token not in gone
    }


@pytest.mark.parametrize(("retry_after", "after_s"), [("120", 120.0), ("1", 10.0)])
async def test_429_is_a_retry_after_the_servers_wait(fake, key_file, retry_after, after_s):
    fake.set_script(share_429=1.0, retry_after=retry_after)
    async with started(sender_for(fake, key_file)) as sender:
        (outcome,) = await sender.send([delivery()])
    assert (outcome.kind, outcome.error_code) == ("retry", "QUOTA_EXCEEDED")
    assert outcome.after_s == after_s
    assert not fake.accepted


async def test_unregistered_and_invalid_tokens_are_gone(fake, key_file):
    fake.set_script(unregistered_tokens=[delivery(1).token], invalid_tokens=[delivery(2).token])
    async with started(sender_for(fake, key_file)) as sender:
        outcomes = await sender.send([delivery(1), delivery(2)])
    assert [(o.kind, o.error_code) for o in outcomes] == [
        ("token_gone", "UNREGISTERED"),
        ("token_gone", "INVALID_ARGUMENT"),
    ]
    for n, outcome in zip((1, 2), outcomes, strict=True):
        assert delivery(n).token not in (outcome.error or "")


async def test_a_payload_fcm_refuses_is_rejected_and_keeps_the_token(fake, key_file):
    too_big = delivery(body="x" * 5000)
    async with started(sender_for(fake, key_file)) as sender:
        (outcome,) = await sender.send([too_big])
    assert (outcome.kind, outcome.error_code) == ("rejected", "INVALID_ARGUMENT")
    assert [a.status for a in fake.attempts] == [400]


async def test_a_hang_longer_than_the_read_timeout_is_a_retry(fake, key_file):
    fake.set_script(share_timeout=1.0, hang_s=20.0)
    async with started(sender_for(fake, key_file, read_timeout_s=0.3)) as sender:
        began = time.monotonic()
        (outcome,) = await sender.send([delivery()])
        took = time.monotonic() - began
    assert (outcome.kind, outcome.error_code) == ("retry", "timeout")
    assert took < 3.0
    assert [a.error_code for a in fake.attempts] == ["timeout"]


async def test_503_outage_then_recovery(fake, key_file):
    async with started(sender_for(fake, key_file)) as sender:
        fake.set_script(outage_for_s=0.6, retry_after="30")
        (during,) = await sender.send([delivery()])
        await asyncio.sleep(0.7)
        (after,) = await sender.send([delivery()])
    assert (during.kind, during.error_code, during.after_s) == ("retry", "UNAVAILABLE", 30.0)
    assert after.kind == "delivered"


async def test_refused_connections_during_an_outage_then_recovery(fake, key_file):
    async with started(sender_for(fake, key_file)) as sender:
        # Warm the pool first: a kept-alive connection must fail as well.
        assert (await sender.send([delivery(0)]))[0].kind == "delivered"
        fake.set_script(outage_for_s=0.8, outage_kind="refuse")
        await asyncio.sleep(0.1)
        during = await sender.send([delivery(1), delivery(2)])
        await asyncio.sleep(1.0)
        (after,) = await sender.send([delivery(3)])
    assert [(o.kind, o.error_code) for o in during] == [("retry", "connection_error")] * 2
    assert after.kind == "delivered"


async def test_every_retry_sends_the_same_message(fake, key_file):
    d = with_deadline(delivery(), now=time.time(), ttl_s=3600)
    async with started(sender_for(fake, key_file)) as sender:
        fake.set_script(share_503=1.0)
        (first,) = await sender.send([d])
        # Cross a second boundary: an expiry taken from "now" would move.
        await asyncio.sleep(1.1)
        fake.set_script(share_503=0.0)
        (second,) = await sender.send([d])
    assert (first.kind, second.kind) == ("retry", "delivered")
    sent = [a.message for a in fake.attempts]
    assert len(sent) == 2 and sent[0] == sent[1] == fake.accepted[0].message
    assert sent[0] == build_message(d, ttl_s=3600, expires_at=d.expires_at)


async def test_a_delivery_past_its_deadline_is_not_sent(fake, key_file):
    stale = delivery(expires_at=time.time() - 1)
    async with started(sender_for(fake, key_file)) as sender:
        (outcome,) = await sender.send([stale])
    assert (outcome.kind, outcome.error_code) == ("rejected", "expired")
    assert fake.attempts == []


async def test_an_expiring_token_is_renewed_once_for_a_hundred_sends(fake, key_file):
    fake.set_script(token_expires_in_s=1.0)
    async with started(sender_for(fake, key_file)) as sender:
        assert fake.token_requests == 1
        await asyncio.sleep(1.2)
        outcomes = await sender.send([delivery(n) for n in range(100)])
        assert sender.credential_refreshes == 2
    assert {o.kind for o in outcomes} == {"delivered"}
    assert fake.token_requests == 2
    # The fake would answer 401 to an expired token: none was sent.
    assert {a.status for a in fake.attempts} == {200}


async def test_a_revoked_token_is_refreshed_once_and_each_send_retried_once(fake, key_file):
    async with started(sender_for(fake, key_file)) as sender:
        fake.revoke_tokens()
        outcomes = await sender.send([delivery(n) for n in range(100)])
    assert {o.kind for o in outcomes} == {"delivered"}
    assert fake.token_requests == 2
    statuses = [a.status for a in fake.attempts]
    assert statuses.count(401) == 100 and statuses.count(200) == 100


async def test_401_403_that_a_refresh_does_not_cure_are_misconfigured(fake, key_file):
    # The key belongs to proj-1; FCM denies sends to another project.
    async with started(sender_for(fake, key_file, project_id="proj-other")) as sender:
        (outcome,) = await sender.send([delivery()])
    assert (outcome.kind, outcome.error_code) == ("misconfigured", "PERMISSION_DENIED")
    assert "after a credential refresh" in (outcome.error or "")
    assert fake.token_requests == 2
    assert [a.status for a in fake.attempts] == [403, 403]


@pytest.mark.parametrize(
    ("mode", "status"), [("SENDER_ID_MISMATCH", 403), ("THIRD_PARTY_AUTH_ERROR", 401)]
)
async def test_fcm_configuration_errors_are_misconfigured_without_a_refresh(
    fake, key_file, mode, status
):
    fake.set_script(error_mode=mode)
    async with started(sender_for(fake, key_file)) as sender:
        (outcome,) = await sender.send([delivery()])
    assert (outcome.kind, outcome.error_code) == ("misconfigured", mode)
    assert fake.token_requests == 1
    assert [a.status for a in fake.attempts] == [status]


async def test_a_key_the_token_endpoint_rejects_stops_the_start(fake, tmp_path):
    path = tmp_path / "unknown.json"
    fake.write_service_account(path, "proj-1", trusted=False)
    sender = sender_for(fake, path)
    with pytest.raises(FcmConfigError, match=r"unknown\.json.*invalid_grant"):
        await sender.start()
    await sender.close()


async def test_a_key_rejected_while_running_makes_every_send_misconfigured(fake, tmp_path):
    path = tmp_path / "unknown.json"
    fake.write_service_account(path, "proj-1", trusted=False)
    recorder = Recorder()
    sender = sender_for(fake, path, verify_on_start=False, observer=recorder)
    async with started(sender):
        outcomes = await sender.send([delivery(n) for n in range(10)])
    assert {(o.kind, o.error_code) for o in outcomes} == {("misconfigured", "invalid_grant")}
    assert "Invalid JWT Signature" in (outcomes[0].error or "")
    # One token request answered all ten, and no message went out.
    assert fake.token_requests == 1 and fake.token_failures == 1
    assert fake.attempts == []
    assert recorder.refreshes == ["error"]
    assert sender.credential_failures == 1


async def test_an_unreachable_token_endpoint_is_a_retry(fake, tmp_path):
    path = tmp_path / "sa.json"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    fake_account = fake.write_service_account(path, "proj-1")
    text = path.read_text().replace(fake_account.token_uri, f"http://127.0.0.1:{closed_port}/token")
    path.write_text(text)
    sender = sender_for(fake, path, token_timeout_s=1.0)
    async with started(sender):
        (outcome,) = await sender.send([delivery()])
    assert (outcome.kind, outcome.error_code) == ("retry", "oauth_unavailable")


async def test_concurrency_never_exceeds_max_in_flight(fake, key_file):
    fake.set_script(latency_s=0.05)
    recorder = Recorder()
    sender = sender_for(fake, key_file, max_in_flight=8, observer=recorder)
    async with started(sender):
        outcomes = await sender.send([delivery(n) for n in range(100)])
        assert sender.in_flight == 0
    assert {o.kind for o in outcomes} == {"delivered"}
    assert fake.max_concurrent == 8
    assert sender.max_in_flight_seen == 8
    assert max(recorder.in_flight) == 8 and recorder.in_flight[-1] == 0


async def test_the_fakes_draws_repeat_with_the_seed(fake, key_file):
    async def statuses():
        fake.set_script(share_503=0.3, share_429=0.3, seed=11)
        fake.reset_records()
        for n in range(20):
            await sender.send([delivery(n)])
        return [a.status for a in fake.attempts]

    async with started(sender_for(fake, key_file)) as sender:
        first = await statuses()
        second = await statuses()
    assert first == second
    assert {200, 429, 503} <= set(first)


async def test_the_control_endpoints_over_http(fake, key_file):
    async with started(sender_for(fake, key_file)) as sender, aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/_fake/script", json={"outage_for_s": 30}) as r:
            assert r.status == 200
            assert (await r.json())["outage_for_s"] == 30
        (during,) = await sender.send([delivery(1)])
        async with http.post(f"{fake.base_url}/_fake/script", json={"outage_for_s": 0}) as r:
            assert r.status == 200
        (after,) = await sender.send([delivery(2)])
        async with http.get(f"{fake.base_url}/_fake/accepted") as r:
            accepted = (await r.json())["accepted"]
        async with http.get(f"{fake.base_url}/_fake/stats") as r:
            stats = await r.json()
        async with http.post(f"{fake.base_url}/_fake/script", json={"share_429": 2}) as r:
            assert r.status == 400
        async with http.post(f"{fake.base_url}/_fake/script", json={"colour": "red"}) as r:
            assert r.status == 400
    assert (during.kind, after.kind) == ("retry", "delivered")
    assert [a["message"]["token"] for a in accepted] == [delivery(2).token]
    assert stats["attempts"] == 2 and stats["token_requests"] == 1


def assertion(account_file: Path, **claims) -> str:
    info = json.loads(account_file.read_text())
    now = int(time.time())
    payload = {
        "iss": info["client_email"],
        "aud": GOOGLE_TOKEN_URI,
        "scope": FCM_SCOPE,
        "iat": now,
        "exp": now + 3600,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(
        payload, info["private_key"], algorithm="RS256", headers={"kid": info["private_key_id"]}
    )


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({}, None),
        ({"scope": "https://www.googleapis.com/auth/userinfo.email"}, "invalid_scope"),
        ({"aud": "https://example.invalid/token"}, "invalid_grant"),
        ({"iss": "someone@else.iam.gserviceaccount.com"}, "invalid_grant"),
        ({"exp": int(time.time()) - 60, "iat": int(time.time()) - 120}, "invalid_grant"),
        ({"exp": int(time.time()) + 7200}, "invalid_grant"),
        ({"scope": None}, "invalid_grant"),
    ],
)
async def test_the_token_endpoint_checks_the_assertion(fake, key_file, claims, error):
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": assertion(key_file, **claims),
    }
    async with aiohttp.ClientSession() as http, http.post(fake.token_uri, data=form) as r:
        answer = await r.json()
    if error is None:
        assert r.status == 200 and answer["token_type"] == "Bearer" and answer["expires_in"] > 0
    else:
        assert r.status == 400 and answer["error"] == error


async def test_the_token_endpoint_wants_the_jwt_bearer_grant(fake, key_file):
    form = {"grant_type": "client_credentials", "assertion": assertion(key_file)}
    async with aiohttp.ClientSession() as http, http.post(fake.token_uri, data=form) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "unsupported_grant_type"


async def test_an_unknown_bearer_token_gets_fcms_401(fake, key_file):
    url = f"{fake.base_url}/v1/projects/proj-1/messages:send"
    body = {"message": {"token": "t"}}
    headers = {"Authorization": "Bearer nope"}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
        answer = await r.json()
    assert r.status == 401
    assert answer["error"]["status"] == "UNAUTHENTICATED"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_command_line_fake_serves_a_real_sender(tmp_path):
    port = free_port()
    key = tmp_path / "demo.json"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "app.notify.fake_fcm", "--port", str(port)),
            *("--service-account", str(key), "--project-id", "demo", "--latency", "0.01"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 20)
        assert f"127.0.0.1:{port}" in line
        sender = FcmSender(key, base_url=f"http://127.0.0.1:{port}")
        async with started(sender):
            (outcome,) = await sender.send([delivery()])
        assert outcome.kind == "delivered"
        assert sender.project_id == "demo"
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert process.returncode == 0
