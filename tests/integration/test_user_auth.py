"""Per-user authentication on a real worker and the real broker: who may act for whom.

One worker accepts both kinds of caller: the service token, and user JWTs
whose keys it fetches from a local JWKS endpoint (tests/jwks_server.py, a
real HTTP server in a thread).  It trusts one proxy hop, so each test
presents its own client address in ``X-Forwarded-For`` and the per-address
refusal limit of one test never spills into another.  Every refusal is
checked for its status, its ``code`` and that the token is not echoed.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.api import refusals as r
from app.api.guard import OPEN_API_WARNING
from tests.integration.harness import READY, Namespace, Worker, fetch, masked
from tests.jwks_server import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    SigningKey,
    ThreadedJwksServer,
    claims,
    forge,
)

SERVICE_TOKEN = "svc-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
SERVICE = {"Authorization": f"Bearer {SERVICE_TOKEN}"}
REGISTRATIONS_PER_HOUR = 3
FAILURES_PER_MINUTE = 10
#: The worker fetches its key set at most once a minute from the request path.
MIN_FETCH_INTERVAL = 60.0

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def new_address() -> str:
    """A client address no other test uses (TEST-NET-2), sent as X-Forwarded-For."""
    return next(_addresses)


def new_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_token() -> str:
    return "fcm:" + uuid.uuid4().hex + uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(
    worker: Worker,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    address: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One request as a client at ``address``: status, headers and the decoded JSON body."""
    sent = dict(headers or {})
    sent["X-Forwarded-For"] = address or new_address()
    raw = None
    if body is not None:
        raw = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    status, got, answer = fetch(worker.url + path, method, raw, sent)
    return status, got, json.loads(answer) if answer else None


def registration(user: str, token: str | None = None, device: str = "phone") -> dict[str, Any]:
    return {"user_id": user, "token": token or new_token(), "device_id": device}


@pytest.fixture(scope="module")
def first_key() -> SigningKey:
    return SigningKey.rsa("rsa-2026-01")


@pytest.fixture(scope="module")
def rotated_key() -> SigningKey:
    return SigningKey.ec("ec-2026-02")


@pytest.fixture(scope="module")
def jwks(first_key: SigningKey) -> Iterator[JwksServer]:
    with ThreadedJwksServer(first_key) as server:
        yield server


@pytest.fixture(scope="module")
def worker(jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(
        Namespace.fresh(),
        tmp_path_factory.mktemp("user-auth"),
        PUSHES_API_TOKEN=SERVICE_TOKEN,
        PUSHES_ADMIN_TOKEN=ADMIN_TOKEN,
        PUSHES_USER_JWKS_URL=jwks.url,
        PUSHES_USER_JWT_ISSUER=ISSUER,
        PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
        PUSHES_REGISTRATIONS_PER_USER_PER_HOUR=str(REGISTRATIONS_PER_HOUR),
        PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE=str(FAILURES_PER_MINUTE),
        PUSHES_TRUSTED_PROXY_HOPS="1",
    )
    w.headers = dict(SERVICE)  # the harness's own helpers act as the service
    w.start().wait_ready()
    yield w
    w.stop()


def assert_refused(
    answer: tuple[int, dict[str, str], Any], status: int, code: str, *secrets: str
) -> dict[str, str]:
    got, headers, body = answer
    assert (got, body["code"]) == (status, code), body
    assert body["error"]
    for secret in secrets:
        assert secret not in json.dumps(body)
    return headers


# --- the right user, the wrong user ------------------------------------------------


def test_the_right_user_registers_and_reads_its_own_devices_masked(
    worker: Worker, first_key: SigningKey
):
    user, token = new_user("own"), new_token()
    jwt = first_key.sign(claims(user))
    status, _, body = call(
        worker, "POST", "/tokens", headers=bearer(jwt), body=registration(user, token)
    )
    assert status == 202 and (body["status"], body["user_id"]) == ("registered", user)
    worker.wait_token(user, "phone", token)
    status, _, body = call(worker, "GET", f"/tokens/{user}", headers=bearer(jwt))
    assert status == 200 and body["devices"][0]["token"] == masked(token)
    assert token not in json.dumps(body)


def test_a_user_jwt_is_matched_to_the_normalised_user_id(worker: Worker, first_key: SigningKey):
    # The JWT says 42 (a number), the body " 42 " (text): one user, as everywhere in the API.
    number = int(uuid.uuid4().int % 10**9) + 10**9
    jwt = first_key.sign(claims(number))
    status, _, body = call(
        worker, "POST", "/tokens", headers=bearer(jwt), body=registration(f" {number} ")
    )
    assert (status, body["user_id"]) == (202, str(number))


def test_the_wrong_user_is_403_and_nothing_is_published(worker: Worker, first_key: SigningKey):
    me, victim, token = new_user("me"), new_user("victim"), new_token()
    jwt = first_key.sign(claims(me))
    answer = call(worker, "POST", "/tokens", headers=bearer(jwt), body=registration(victim, token))
    assert_refused(answer, 403, r.USER_MISMATCH, token, jwt)
    # A later registration of the victim lands after anything published before
    # it in the same partition: once it shows, it is the victim's only device.
    worker.register(victim, token, device_id="real")
    worker.wait_token(victim, "real", token)
    assert set(worker.devices(victim) or {}) == {"real"}


def test_a_user_cannot_read_another_users_devices(worker: Worker, first_key: SigningKey):
    other = new_user("other")
    worker.register(other, new_token())
    jwt = first_key.sign(claims(new_user("nosy")))
    assert_refused(
        call(worker, "GET", f"/tokens/{other}", headers=bearer(jwt)), 403, r.USER_MISMATCH
    )


def test_a_user_cannot_remove_another_users_device(worker: Worker, first_key: SigningKey):
    victim, token = new_user("keep"), new_token()
    worker.register(victim, token, device_id="phone")
    worker.wait_token(victim, "phone", token)
    jwt = first_key.sign(claims(new_user("vandal")))
    answer = call(worker, "DELETE", f"/tokens/{victim}/phone", headers=bearer(jwt))
    assert_refused(answer, 403, r.USER_MISMATCH)
    # A later event of the same user lands in the same partition after any
    # removal published before it: once it shows, the phone would be gone.
    later = new_token()
    worker.register(victim, later, device_id="tablet")
    worker.wait_token(victim, "tablet", later)
    assert worker.devices(victim) == {"phone": masked(token), "tablet": masked(later)}


def test_a_user_removes_its_own_device(worker: Worker, first_key: SigningKey):
    user, token = new_user("remove"), new_token()
    jwt = first_key.sign(claims(user))
    assert (
        call(worker, "POST", "/tokens", headers=bearer(jwt), body=registration(user, token))[0]
        == 202
    )
    worker.wait_token(user, "phone", token)
    status, _, body = call(worker, "DELETE", f"/tokens/{user}/phone", headers=bearer(jwt))
    assert (status, body["status"]) == (202, "removed")
    worker.wait_token(user, "phone", None)


def test_a_user_never_sees_full_tokens_even_with_the_admin_secret(
    worker: Worker, first_key: SigningKey
):
    user, token = new_user("unmask"), new_token()
    worker.register(user, token)
    worker.wait_token(user, "default", token)
    jwt = first_key.sign(claims(user))
    answer = call(
        worker, "GET", f"/tokens/{user}", headers={**bearer(jwt), "X-Admin-Token": ADMIN_TOKEN}
    )
    assert_refused(answer, 403, r.USER_CANNOT_UNMASK, token)
    # The service with the admin secret does see it; with a wrong one it is refused.
    status, _, body = call(
        worker, "GET", f"/tokens/{user}", headers={**SERVICE, "X-Admin-Token": ADMIN_TOKEN}
    )
    assert status == 200 and body["devices"][0]["token"] == token
    answer = call(worker, "GET", f"/tokens/{user}", headers={**SERVICE, "X-Admin-Token": "guess"})
    assert_refused(answer, 403, r.BAD_ADMIN_TOKEN, token)


# --- the service ------------------------------------------------------------------------


def test_the_service_token_acts_for_any_user_without_the_registration_limit(worker: Worker):
    user, address = new_user("svc"), new_address()
    for n in range(REGISTRATIONS_PER_HOUR + 2):
        body = registration(user, device=f"d{n}")
        assert (
            call(worker, "POST", "/tokens", headers=SERVICE, body=body, address=address)[0] == 202
        )
    worker.wait_token(user, f"d{REGISTRATIONS_PER_HOUR + 1}", body["token"])
    status, _, answer = call(worker, "GET", f"/tokens/{user}", headers=SERVICE)
    assert status == 200 and len(answer["devices"]) == REGISTRATIONS_PER_HOUR + 2
    assert call(worker, "DELETE", f"/tokens/{user}/d0", headers=SERVICE)[0] == 202


def test_service_endpoints_take_the_service_token_only(worker: Worker, first_key: SigningKey):
    jwt = first_key.sign(claims(new_user("ops")))
    for path in ("/stats", "/metrics", "/"):
        assert fetch(worker.url + path, headers=SERVICE)[0] == 200, path
        assert_refused(call(worker, "GET", path, headers=bearer(jwt)), 403, r.SERVICE_ONLY)
        assert_refused(call(worker, "GET", path), 401, r.MISSING_CREDENTIALS)
    # The description: any identified caller; the health checks: anyone.
    assert call(worker, "GET", "/openapi.json", headers=bearer(jwt))[0] == 200
    assert_refused(call(worker, "GET", "/openapi.json"), 401, r.MISSING_CREDENTIALS)
    for path in ("/healthz", "/readyz"):
        assert call(worker, "GET", path)[0] == 200


def test_a_wrong_method_is_405_for_anyone_and_an_unknown_path_404_for_a_user(
    worker: Worker, first_key: SigningKey
):
    user = bearer(first_key.sign(claims(new_user("lost"))))
    for headers in ({}, user):
        status, got, body = call(worker, "TRACE", "/healthz", headers=headers)
        assert status == 405 and "not allowed" in body["error"]
        assert set(got["Allow"].split(",")) == {"GET", "HEAD"}
    assert call(worker, "PUT", "/tokens", headers=user)[0] == 405
    assert call(worker, "GET", "/no-such-page", headers=user)[0] == 404
    assert_refused(call(worker, "GET", "/no-such-page"), 401, r.MISSING_CREDENTIALS)


def test_the_served_document_declares_both_schemes(worker: Worker):
    status, _, doc = call(worker, "GET", "/openapi.json", headers=SERVICE)
    assert status == 200
    schemes = doc["components"]["securitySchemes"]
    assert (
        set(schemes) == {"serviceToken", "userJwt"} and schemes["userJwt"]["bearerFormat"] == "JWT"
    )
    post = doc["paths"]["/tokens"]["post"]
    assert post["security"] == [{"serviceToken": []}, {"userJwt": []}]
    assert {"401", "403", "429"} <= set(post["responses"])
    assert SERVICE_TOKEN not in json.dumps(doc)


# --- every way a credential is refused ----------------------------------------------------


def _hs256(key: SigningKey, user: str) -> str:
    return forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims(user), key.public_pem())


def _at(**offsets: int) -> dict[str, int]:
    now = int(time.time())
    return {name: now + offset for name, offset in offsets.items()}


# name -> (the Authorization header for (key, stranger, user), status, code); the
# stranger has the key's kid but another private key: its signatures are forged.
REFUSALS: dict[str, tuple[Any, int, str]] = {
    "no Authorization header": (lambda k, s, u: None, 401, r.MISSING_CREDENTIALS),
    "Basic instead of Bearer": (lambda k, s, u: "Basic dXNlcjpwYXNz", 401, r.NOT_BEARER),
    "an empty bearer": (lambda k, s, u: "Bearer ", 401, r.MISSING_CREDENTIALS),
    "not a JWT": (lambda k, s, u: "Bearer not-a-jwt", 401, r.MALFORMED_TOKEN),
    "a wrong service token": (
        lambda k, s, u: f"Bearer {SERVICE_TOKEN}x",
        401,
        r.MALFORMED_TOKEN,
    ),
    "expired": (
        lambda k, s, u: "Bearer " + k.sign(claims(u, **_at(exp=-120, iat=-600, nbf=-600))),
        401,
        r.EXPIRED,
    ),
    "not valid yet (nbf)": (
        lambda k, s, u: "Bearer " + k.sign(claims(u, **_at(nbf=600))),
        401,
        r.NOT_YET_VALID,
    ),
    "issued in the future (iat)": (
        lambda k, s, u: "Bearer " + k.sign(claims(u, **_at(iat=600))),
        401,
        r.NOT_YET_VALID,
    ),
    "alg none": (
        lambda k, s, u: "Bearer " + forge({"alg": "none", "typ": "JWT"}, claims(u), None),
        401,
        r.ALG_NONE,
    ),
    "HS256 keyed with the public key": (
        lambda k, s, u: "Bearer " + _hs256(k, u),
        401,
        r.ALG_NOT_ALLOWED,
    ),
    "a forged signature": (lambda k, s, u: "Bearer " + s.sign(claims(u)), 401, r.BAD_SIGNATURE),
    "no kid": (lambda k, s, u: "Bearer " + k.sign(claims(u), kid=False), 401, r.MISSING_KID),
    "another issuer": (
        lambda k, s, u: "Bearer " + k.sign(claims(u, iss="https://evil.example/")),
        401,
        r.WRONG_ISSUER,
    ),
    "another audience": (
        lambda k, s, u: "Bearer " + k.sign(claims(u, aud="another-api")),
        401,
        r.WRONG_AUDIENCE,
    ),
    "no exp": (lambda k, s, u: "Bearer " + k.sign(claims(u, exp=None)), 401, r.MISSING_CLAIM),
    "no sub": (lambda k, s, u: "Bearer " + k.sign(claims(None)), 401, r.USER_CLAIM_MISSING),
    "a sub that is no user id": (
        lambda k, s, u: "Bearer " + k.sign(claims("a\u0000b")),
        401,
        r.USER_CLAIM_INVALID,
    ),
}


@pytest.fixture(scope="module")
def stranger(first_key: SigningKey) -> SigningKey:
    return SigningKey.rsa(first_key.kid)


@pytest.mark.parametrize("name", list(REFUSALS))
def test_every_bad_credential_is_refused_with_its_code_and_never_echoed(
    worker: Worker, first_key: SigningKey, stranger: SigningKey, name: str
):
    user = new_user("refused")
    build, status, code = REFUSALS[name]
    authorization = build(first_key, stranger, user)
    headers = {} if authorization is None else {"Authorization": authorization}
    token = (authorization or "").partition(" ")[2]
    answer = call(worker, "POST", "/tokens", headers=headers, body=registration(user))
    got = assert_refused(answer, status, code, *([token] if token else []))
    challenge = got["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="pushes"')
    invalid = code not in (r.MISSING_CREDENTIALS, r.NOT_BEARER)
    assert ('error="invalid_token"' in challenge) is invalid


# --- the abuse limits -----------------------------------------------------------------------


def test_registrations_past_the_per_user_limit_are_429_with_retry_after(
    worker: Worker, first_key: SigningKey
):
    user = new_user("burst")
    jwt = first_key.sign(claims(user))
    for n in range(REGISTRATIONS_PER_HOUR):
        body = registration(user, device=f"d{n}")
        assert call(worker, "POST", "/tokens", headers=bearer(jwt), body=body)[0] == 202
    # Every call comes from another address: the limit is the user's.
    answer = call(
        worker, "POST", "/tokens", headers=bearer(jwt), body=registration(user, device="x")
    )
    headers = assert_refused(answer, 429, r.TOO_MANY_REGISTRATIONS, jwt)
    # One registration per 3600/limit seconds drains the allowance again.
    assert 1 <= int(headers["Retry-After"]) <= 3600 // REGISTRATIONS_PER_HOUR
    # Other users, and the service for this user, are not held back.
    other = new_user("calm")
    assert (
        call(
            worker,
            "POST",
            "/tokens",
            headers=bearer(first_key.sign(claims(other))),
            body=registration(other),
        )[0]
        == 202
    )
    assert (
        call(worker, "POST", "/tokens", headers=SERVICE, body=registration(user, device="x"))[0]
        == 202
    )


def test_an_address_that_keeps_failing_is_429_even_with_a_valid_jwt(
    worker: Worker, first_key: SigningKey
):
    attacker, user = new_address(), new_user("target")
    for _ in range(FAILURES_PER_MINUTE):
        answer = call(worker, "GET", f"/tokens/{user}", headers=bearer("guess"), address=attacker)
        assert_refused(answer, 401, r.MALFORMED_TOKEN)
    valid = bearer(first_key.sign(claims(user)))
    answer = call(worker, "GET", f"/tokens/{user}", headers=valid, address=attacker)
    headers = assert_refused(answer, 429, r.TOO_MANY_FAILURES)
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Another client, and the service token from the same address, are served.
    assert call(worker, "GET", f"/tokens/{user}", headers=valid)[0] == 404  # no device yet
    assert call(worker, "GET", f"/tokens/{user}", headers=SERVICE, address=attacker)[0] == 404


# --- keys rotated at the issuer ----------------------------------------------------------------


def test_a_rotated_key_with_a_new_kid_is_picked_up(
    worker: Worker, jwks: JwksServer, first_key: SigningKey, rotated_key: SigningKey
):
    user = new_user("rotated")
    assert jwks.fetches >= 1 and jwks.last_fetch is not None  # fetched when the API started
    jwks.serve(rotated_key, first_key)
    # The worker refetches on an unknown kid, at most once a minute: wait out the minute.
    wait = jwks.last_fetch + MIN_FETCH_INTERVAL + 1.0 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    before = jwks.fetches
    jwt = rotated_key.sign(claims(user))
    body_token = new_token()
    status, _, body = call(
        worker, "POST", "/tokens", headers=bearer(jwt), body=registration(user, body_token)
    )
    assert status == 202, body
    assert jwks.fetches == before + 1
    # Forged key ids right after cost no further fetch: the minute has not passed.
    address = new_address()
    for n in range(3):
        forged = bearer(rotated_key.sign(claims(user), kid=f"unknown-{n}"))
        answer = call(worker, "GET", f"/tokens/{user}", headers=forged, address=address)
        assert_refused(answer, 401, r.UNKNOWN_KID)
    assert jwks.fetches == before + 1
    # The old key still works while the issuer publishes it.
    worker.wait_token(user, "phone", body_token)
    old = bearer(first_key.sign(claims(user)))
    assert call(worker, "GET", f"/tokens/{user}", headers=old)[0] == 200


# --- the worker's logs ---------------------------------------------------------------------------


def test_a_secured_worker_logs_no_open_warning_and_no_credential(worker: Worker):
    output = worker.output()
    assert "HTTP API is OPEN" not in output
    assert SERVICE_TOKEN not in output and ADMIN_TOKEN not in output
    assert "eyJ" not in output  # no JWT (their header starts so)


# --- settings that stop the worker ---------------------------------------------------------------


def exits_with(tmp_path: Path, needle: str, **env: str) -> None:
    w = Worker(Namespace.fresh(), tmp_path, **env).start()
    assert w.proc is not None
    code = w.proc.wait(timeout=120)
    assert code != 0, w.output()[-2000:]
    assert needle in w.output(), w.output()[-2000:]
    assert READY not in w.output()


def test_require_auth_without_a_token_or_keys_refuses_to_start(tmp_path: Path):
    exits_with(
        tmp_path,
        "PUSHES_REQUIRE_AUTH=true but the API would be open",
        PUSHES_REQUIRE_AUTH="true",
    )


def test_a_bad_pem_key_file_refuses_to_start(tmp_path: Path):
    pem = tmp_path / "users.pem"
    pem.write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
    exits_with(
        tmp_path,
        f"PUSHES_USER_JWT_PUBLIC_KEY={str(pem)!r}",
        PUSHES_USER_JWT_PUBLIC_KEY=str(pem),
        PUSHES_USER_JWT_ISSUER=ISSUER,
        PUSHES_USER_JWT_AUDIENCE=AUDIENCE,
        PUSHES_REQUIRE_AUTH="true",
    )


def test_an_open_worker_warns_once_that_its_api_is_open(tmp_path: Path):
    w = Worker(Namespace.fresh(), tmp_path).start()
    try:
        w.wait_ready()
        w.wait_for(OPEN_API_WARNING, timeout=30)
        assert fetch(w.url + "/tokens/anyone")[0] == 404  # open: no credentials needed
        assert len(w.lines(OPEN_API_WARNING)) == 1, w.lines("OPEN")
    finally:
        w.stop()
