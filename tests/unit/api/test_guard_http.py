"""The guard's middleware on a small aiohttp app shaped like the token API, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.api import refusals as r
from app.api.callers import CallerKind
from app.api.guard import OPEN_API_WARNING, RequestGuard
from app.api.guard_http import (
    CALLER,
    authorize_registration,
    guard_middleware,
    refusal_response,
    serve_with,
)
from app.config import Settings
from app.domain.records import normalize_user_id
from tests.jwks_server import AUDIENCE, ISSUER, JwksServer, claims

SERVICE_TOKEN = "s3rvice-t0ken"
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}


async def register(request: web.Request) -> web.Response:
    body = await request.json()
    refusal = authorize_registration(request, normalize_user_id(body["user_id"]))
    if refusal is not None:
        return refusal_response(refusal)
    return web.json_response({"status": "registered"}, status=202)


async def devices(request: web.Request) -> web.Response:
    caller = request[CALLER]
    return web.json_response({"caller": caller.kind.value, "user_id": caller.user_id})


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def client(jwks_server: JwksServer, clock) -> AsyncIterator[TestClient]:
    settings = Settings.from_env(
        {
            "PUSHES_API_TOKEN": SERVICE_TOKEN,
            "PUSHES_USER_JWKS_URL": jwks_server.url,
            "PUSHES_USER_JWT_ISSUER": ISSUER,
            "PUSHES_USER_JWT_AUDIENCE": AUDIENCE,
            "PUSHES_REGISTRATIONS_PER_USER_PER_HOUR": "3",
            "PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE": "10",
            "PUSHES_TRUSTED_PROXY_HOPS": "1",
        }
    )
    guard = RequestGuard.from_settings(settings, clock=clock)
    app = web.Application(middlewares=[guard_middleware(guard)])
    app.router.add_post("/tokens", register)
    app.router.add_get("/tokens/{user_id}", devices)
    app.router.add_delete("/tokens/{user_id}/{device_id}", devices)
    app.router.add_get("/stats", ok)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/openapi.json", ok)
    async with TestClient(TestServer(app)) as c:
        yield c
    await guard.close()


async def test_health_checks_need_nothing(client):
    assert (await client.get("/healthz")).status == 200


async def test_no_credentials_is_a_json_401_with_a_challenge(client):
    resp = await client.get("/tokens/42")
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="pushes"'
    assert (await resp.json())["code"] == r.MISSING_CREDENTIALS


async def test_a_user_reads_and_removes_its_own_devices_only(client, rsa_key):
    headers = bearer(rsa_key.sign(claims(42)))
    resp = await client.get("/tokens/%2042", headers=headers)  # " 42" is user 42
    assert resp.status == 200
    assert await resp.json() == {"caller": CallerKind.USER.value, "user_id": "42"}
    assert (await client.delete("/tokens/42/phone", headers=headers)).status == 200
    for method, path in (("GET", "/tokens/43"), ("DELETE", "/tokens/43/phone")):
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 403 and (await resp.json())["code"] == r.USER_MISMATCH


async def test_a_user_registers_for_itself_until_the_limit(client, ec_key):
    headers = bearer(ec_key.sign(claims("7")))
    for _ in range(3):
        resp = await client.post("/tokens", json={"user_id": 7, "token": "t"}, headers=headers)
        assert resp.status == 202
    resp = await client.post("/tokens", json={"user_id": 7, "token": "t"}, headers=headers)
    assert resp.status == 429 and resp.headers["Retry-After"] == "1200"
    assert (await resp.json())["code"] == r.TOO_MANY_REGISTRATIONS
    resp = await client.post("/tokens", json={"user_id": 8, "token": "t"}, headers=headers)
    assert resp.status == 403 and (await resp.json())["code"] == r.USER_MISMATCH


async def test_the_service_acts_for_anyone_and_reaches_service_endpoints(client, rsa_key):
    for _ in range(5):
        resp = await client.post("/tokens", json={"user_id": 7, "token": "t"}, headers=SERVICE)
        assert resp.status == 202
    assert (await client.get("/tokens/99", headers=SERVICE)).status == 200
    assert (await client.get("/stats", headers=SERVICE)).status == 200
    user = bearer(rsa_key.sign(claims(42)))
    resp = await client.get("/stats", headers=user)
    assert resp.status == 403 and (await resp.json())["code"] == r.SERVICE_ONLY
    assert (await client.get("/openapi.json", headers=user)).status == 200


async def test_an_expired_jwt_is_401_invalid_token(client, rsa_key):
    token = rsa_key.sign(claims(42, exp=1))
    resp = await client.get("/tokens/42", headers=bearer(token))
    assert resp.status == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
    body = await resp.json()
    assert body["code"] == r.EXPIRED and token not in body["error"]


async def test_a_client_that_keeps_failing_is_429_by_its_forwarded_address(client, rsa_key, clock):
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    for _ in range(10):
        resp = await client.get("/tokens/42", headers={**attacker, **bearer("forged")})
        assert resp.status == 401
    valid = bearer(rsa_key.sign(claims(42)))
    resp = await client.get("/tokens/42", headers={**attacker, **valid})
    assert resp.status == 429 and (await resp.json())["code"] == r.TOO_MANY_FAILURES
    assert int(resp.headers["Retry-After"]) >= 1
    # Another client behind the same proxy, and the service token, are not affected.
    other = {"X-Forwarded-For": "203.0.113.67"}
    assert (await client.get("/tokens/42", headers={**other, **valid})).status == 200
    assert (await client.get("/stats", headers={**attacker, **SERVICE})).status == 200
    clock.advance(60)
    assert (await client.get("/tokens/42", headers={**attacker, **valid})).status == 200


async def test_unknown_paths_are_guarded_too(client, rsa_key):
    assert (await client.get("/nope")).status == 401
    assert (await client.get("/nope", headers=SERVICE)).status == 404
    # A user is identified too: the path does not exist, it is not a service endpoint.
    assert (await client.get("/nope", headers=bearer(rsa_key.sign(claims(42))))).status == 404


@pytest.mark.parametrize("credentials", ["none", "user", "service"])
async def test_a_wrong_method_is_405_for_anyone(client, rsa_key, credentials):
    headers = {
        "none": {},
        "user": bearer(rsa_key.sign(claims(42))),
        "service": SERVICE,
    }[credentials]
    for method, path in (("TRACE", "/healthz"), ("PUT", "/tokens"), ("POST", "/stats")):
        resp = await client.request(method, path, headers=headers)
        assert resp.status == 405, (method, path)
        assert "GET" in resp.headers["Allow"] or "POST" in resp.headers["Allow"]


async def test_the_guard_starts_and_closes_with_the_web_server(jwks_server: JwksServer):
    settings = Settings.from_env(
        {
            "PUSHES_USER_JWKS_URL": jwks_server.url,
            "PUSHES_USER_JWT_ISSUER": ISSUER,
            "PUSHES_USER_JWT_AUDIENCE": AUDIENCE,
        }
    )
    guard = RequestGuard.from_settings(settings)
    app = web.Application(middlewares=[guard_middleware(guard)])
    app.router.add_get("/tokens/{user_id}", devices)
    serve_with(app, guard)
    keys = guard.verifier.keys
    async with TestClient(TestServer(app)):
        assert keys.fetches == 1  # started with the server, before any request
        await keys.refresh()
        session = keys._session
        assert session is not None and not session.closed
    assert session.closed and jwks_server.fetches == 1


async def test_an_open_api_warns_once_when_its_server_starts(caplog):
    guard = RequestGuard.from_settings(Settings.from_env({}))
    app = web.Application(middlewares=[guard_middleware(guard)])
    app.router.add_get("/tokens/{user_id}", devices)
    serve_with(app, guard)
    assert not caplog.records
    async with TestClient(TestServer(app)) as c:
        resp = await c.get("/tokens/1")
        assert resp.status == 200 and (await resp.json())["caller"] == CallerKind.ANONYMOUS.value
        await c.get("/tokens/2")
    assert [rec.getMessage() for rec in caplog.records] == [OPEN_API_WARNING]
