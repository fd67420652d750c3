"""The request guard: credentials, limits and their order, as the middleware will use them."""

from __future__ import annotations

import pytest

from app.api import refusals as r
from app.api.callers import ANONYMOUS, SERVICE, user_caller
from app.api.guard import OPEN_API_WARNING, RequestGuard
from app.api.jwt_keys import JwksKeys
from app.api.refusals import Refusal
from app.config import Settings
from tests.jwks_server import AUDIENCE, ISSUER, JwksServer, SigningKey, claims

SERVICE_TOKEN = "s3rvice-t0ken"
ADDRESS = "198.51.100.7"


def settings_with(**env: str) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
def pem_file(tmp_path, rsa_key):
    path = tmp_path / "users.pem"
    path.write_bytes(rsa_key.public_pem())
    return str(path)


@pytest.fixture
def guard(pem_file, clock) -> RequestGuard:
    settings = settings_with(
        PUSHES_API_TOKEN=SERVICE_TOKEN,
        PUSHES_USER_JWT_PUBLIC_KEY=pem_file,
        PUSHES_USER_JWT_ISSUER=ISSUER,
        PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
        PUSHES_REGISTRATIONS_PER_USER_PER_HOUR="2",
        PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE="3",
    )
    return RequestGuard.from_settings(settings, clock=clock)


async def answer(guard: RequestGuard, header: str | None, target, *, registration=False):
    """What the middleware and handler together would do; returns the caller or refusal."""
    outcome = await guard.identify(header, ADDRESS)
    if not isinstance(outcome, Refusal):
        outcome = guard.authorize(outcome, target, registration=registration)
    guard.record(ADDRESS, outcome.status if isinstance(outcome, Refusal) else 202)
    return outcome


async def test_the_service_token_acts_for_any_user(guard):
    for target in ("1", 2, " 3 ", None):
        assert await answer(guard, f"Bearer {SERVICE_TOKEN}", target) == SERVICE


async def test_a_user_jwt_acts_for_its_own_user_only(guard, rsa_key):
    header = f"Bearer {rsa_key.sign(claims(42))}"
    assert await answer(guard, header, "42") == user_caller("42")
    refusal = await answer(guard, header, "43")
    assert (refusal.status, refusal.code) == (403, r.USER_MISMATCH)


async def test_no_credentials_is_401(guard):
    refusal = await answer(guard, None, "42")
    assert (refusal.status, refusal.code) == (401, r.MISSING_CREDENTIALS)


async def test_registrations_past_the_limit_are_429_with_retry_after(guard, rsa_key):
    header = f"Bearer {rsa_key.sign(claims(42))}"
    for _ in range(2):
        assert await answer(guard, header, 42, registration=True) == user_caller("42")
    refusal = await answer(guard, header, 42, registration=True)
    assert (refusal.status, refusal.code) == (429, r.TOO_MANY_REGISTRATIONS)
    assert refusal.headers()["Retry-After"] == "1800"
    # Reading and removing are not registrations.
    assert await answer(guard, header, "42") == user_caller("42")


async def test_an_address_that_keeps_failing_is_429_before_its_jwts_are_checked(
    guard, rsa_key, clock
):
    for _ in range(3):
        assert (await answer(guard, "Bearer forged", "42")).status == 401
    # Now even a valid JWT from that address is turned away, unverified.
    valid = f"Bearer {rsa_key.sign(claims(42))}"
    refusal = await answer(guard, valid, "42")
    assert (refusal.status, refusal.code) == (429, r.TOO_MANY_FAILURES)
    assert int(refusal.headers()["Retry-After"]) >= 1
    # Other addresses are not affected, and the service token never is.
    assert await guard.identify(valid, "203.0.113.1") == user_caller("42")
    assert await answer(guard, f"Bearer {SERVICE_TOKEN}", None) == SERVICE
    clock.advance(60)
    assert await answer(guard, valid, "42") == user_caller("42")


async def test_an_open_api_lets_everyone_in_without_limits(clock):
    guard = RequestGuard.from_settings(settings_with(), clock=clock)
    for _ in range(100):
        assert await guard.identify("Bearer anything", ADDRESS) == ANONYMOUS
        guard.record(ADDRESS, 403)
        assert guard.authorize(ANONYMOUS, "42", registration=True) == ANONYMOUS
    assert len(guard.limits.failures) == 0


async def test_a_service_token_only_api_refuses_other_tokens_with_403(clock):
    guard = RequestGuard.from_settings(settings_with(PUSHES_API_TOKEN=SERVICE_TOKEN), clock=clock)
    refusal = await guard.identify("Bearer a.b.c", ADDRESS)
    assert (refusal.status, refusal.code) == (403, r.BAD_SERVICE_TOKEN)
    assert guard.verifier is None


async def test_a_guard_with_a_jwks_url_checks_tokens_against_it(clock, ec_key):
    server = await JwksServer(ec_key).start()
    guard = RequestGuard.from_settings(
        settings_with(
            PUSHES_USER_JWKS_URL=server.url,
            PUSHES_USER_JWT_ISSUER=ISSUER,
            PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
            PUSHES_USER_JWT_CLAIM="uid",
            PUSHES_TRUSTED_PROXY_HOPS="1",
        ),
        clock=clock,
    )
    try:
        assert isinstance(guard.verifier.keys, JwksKeys)
        token = ec_key.sign(claims(sub="someone", uid=" 9 "))
        assert await guard.identify(f"Bearer {token}", ADDRESS) == user_caller("9")
        stranger = SigningKey.ec("ec-1")  # same kid, another key
        refusal = await guard.identify(f"Bearer {stranger.sign(claims())}", ADDRESS)
        assert refusal.code == r.BAD_SIGNATURE
        assert server.fetches == 1
        assert guard.address("10.0.0.1", "203.0.113.9") == "203.0.113.9"
    finally:
        await guard.close()
        await server.stop()


def test_an_open_guard_warns_once_at_start_that_the_api_is_open(clock, caplog):
    RequestGuard.from_settings(settings_with(), clock=clock).start()
    warnings = [rec for rec in caplog.records if rec.levelname == "WARNING"]
    assert [rec.getMessage() for rec in warnings] == [OPEN_API_WARNING]
    assert "PUSHES_REQUIRE_AUTH=true" in OPEN_API_WARNING


async def test_a_secured_guard_says_nothing_and_loads_its_key_set_in_the_background(
    clock, ec_key, caplog
):
    server = await JwksServer(ec_key).start()
    server.delay = 0.3
    guard = RequestGuard.from_settings(
        settings_with(
            PUSHES_USER_JWKS_URL=server.url,
            PUSHES_USER_JWT_ISSUER=ISSUER,
            PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
        ),
        clock=clock,
    )
    try:
        guard.start()  # returns at once, while the issuer takes its time
        keys = guard.verifier.keys
        assert keys.state.in_flight and not keys.state.keys
        await keys.refresh()  # waits for the fetch start() began, starts none
        assert server.fetches == keys.fetches == 1 and ec_key.kid in keys.state.keys
        token = ec_key.sign(claims("5"))
        assert await guard.identify(f"Bearer {token}", ADDRESS) == user_caller("5")
        assert server.fetches == 1
        assert not [rec for rec in caplog.records if rec.levelname == "WARNING"]
    finally:
        await guard.close()
        await server.stop()
