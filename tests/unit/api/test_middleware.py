"""The middlewares on a small aiohttp app: JSON errors, the guard, request metrics."""

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.api import middleware
from app.api import refusals as r
from app.api.guard import RequestGuard
from app.config import Settings
from app.ops.metrics import http_requests


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError(f"token={request.query['t']} leaked?")


async def text_error(request: web.Request) -> web.Response:
    return web.Response(status=418, text="teapot")


@pytest.fixture
async def client():
    guard = RequestGuard.from_settings(Settings.from_env({"PUSHES_API_TOKEN": "s3cret"}))
    app = web.Application(middlewares=middleware.middlewares(guard))
    app.router.add_get("/tokens/{user_id}", ok)
    app.router.add_get("/healthz", ok)
    app.router.add_get("/boom", boom)
    app.router.add_get("/teapot", text_error)
    async with TestClient(TestServer(app)) as c:
        yield c


AUTH = {"Authorization": "Bearer s3cret"}


async def test_unknown_path_is_a_json_404(client):
    resp = await client.get("/nope", headers=AUTH)
    assert resp.status == 404 and "no such endpoint" in (await resp.json())["error"]


async def test_wrong_method_is_a_json_405_with_allow(client):
    resp = await client.post("/healthz", headers=AUTH)
    assert resp.status == 405 and "GET" in resp.headers["Allow"]
    assert "not allowed" in (await resp.json())["error"]


async def test_an_exception_is_a_json_500_without_its_text(client, caplog):
    resp = await client.get("/boom?t=abcdef0123456789", headers=AUTH)
    assert resp.status == 500
    assert "abcdef0123456789" not in await resp.text()
    assert "RuntimeError" in caplog.text and "abcdef0123456789" not in caplog.text


async def test_non_json_error_responses_become_json(client):
    resp = await client.get("/teapot", headers=AUTH)
    assert resp.status == 418 and "error" in await resp.json()


async def test_missing_token_401_wrong_token_403(client):
    resp = await client.get("/tokens/1")
    assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Bearer" in (await resp.json())["error"]
    resp = await client.get("/tokens/1", headers={"Authorization": "Bearer nope"})
    assert resp.status == 403 and (await resp.json())["code"] == r.BAD_SERVICE_TOKEN
    resp = await client.get("/tokens/1", headers=AUTH)
    assert resp.status == 200


async def test_the_guards_refusals_are_counted_too(client):
    before = http_requests.labels("/tokens/{user_id}", "GET", "401")._value.get()
    await client.get("/tokens/1")
    assert http_requests.labels("/tokens/{user_id}", "GET", "401")._value.get() == before + 1


async def test_health_needs_no_token(client):
    assert (await client.get("/healthz")).status == 200


async def test_requests_are_counted_by_route_pattern_not_path(client):
    before = http_requests.labels("/tokens/{user_id}", "GET", "200")._value.get()
    await client.get("/tokens/user-42", headers=AUTH)
    after = http_requests.labels("/tokens/{user_id}", "GET", "200")._value.get()
    assert after == before + 1
    await client.get("/nope", headers=AUTH)
    assert http_requests.labels("unmatched", "GET", "404")._value.get() >= 1
