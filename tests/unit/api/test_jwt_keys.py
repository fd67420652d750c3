"""Key sources: what a JWKS or PEM may hold, and how the key set is fetched and cached."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import RSAAlgorithm

from app.api import refusals as r
from app.api.jwt_keys import (
    JwksKeys,
    KeySetState,
    PemKeys,
    Step,
    key_source_from_settings,
    parse_jwks,
    pem_key,
    plan_lookup,
    usable_key,
)
from app.api.refusals import Refusal
from app.api.user_jwt import JwtVerifier, VerifiedJwt
from app.config import ConfigError, Settings
from tests.jwks_server import AUDIENCE, ISSUER, SigningKey, ThreadedJwksServer, claims

# --- what a key set may hold -------------------------------------------------


def test_rsa_and_p256_keys_are_bound_to_their_algorithm(rsa_key, ec_key):
    assert usable_key(rsa_key.public_jwk()).algorithm_name == "RS256"
    assert usable_key(ec_key.public_jwk()).algorithm_name == "ES256"
    # Without "alg" the key type decides.
    jwk = rsa_key.public_jwk()
    del jwk["alg"]
    assert usable_key(jwk).algorithm_name == "RS256"


@pytest.mark.parametrize(
    "change",
    [
        {"use": "enc"},
        {"alg": "RS512"},
        {"alg": "HS256"},
        {"alg": "ES256"},  # an RSA key claiming an EC algorithm
        {"kty": "oct", "k": "c2VjcmV0"},
        {"n": "not base64 !"},
    ],
)
def test_unusable_rsa_jwks_are_left_out(rsa_key, change):
    assert usable_key({**rsa_key.public_jwk(), **change}) is None


def test_small_rsa_keys_other_curves_and_private_keys_are_left_out(rsa_key):
    assert usable_key(SigningKey.rsa("small", bits=1024).public_jwk()) is None
    p384 = SigningKey.ec("p384", ec.SECP384R1()).public_jwk()
    assert usable_key({**p384, "alg": "ES256"}) is None and usable_key(p384) is None
    private = RSAAlgorithm.to_jwk(rsa_key.private, as_dict=True)
    assert usable_key({**private, "kid": "p", "alg": "RS256"}) is None


def test_a_key_set_is_indexed_by_kid_skipping_what_is_unusable(rsa_key, ec_key, rsa_key_2):
    without_kid = rsa_key_2.public_jwk()
    del without_kid["kid"]
    duplicate = {**rsa_key_2.public_jwk(), "kid": rsa_key.kid}
    keys = parse_jwks(
        {
            "keys": [
                rsa_key.public_jwk(),
                duplicate,
                "junk",
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                without_kid,
                ec_key.public_jwk(),
            ]
        }
    )
    assert sorted(keys) == sorted([rsa_key.kid, ec_key.kid])
    # The first of two keys with one kid wins.
    assert keys[rsa_key.kid].key.public_numbers() == rsa_key.private.public_key().public_numbers()


@pytest.mark.parametrize(
    "document",
    [[], {}, {"keys": "x"}, {"keys": []}, {"keys": [{"kty": "oct", "k": "eA", "kid": "h"}]}],
)
def test_a_document_without_usable_keys_is_an_error(document):
    with pytest.raises(ValueError):
        parse_jwks(document)


def test_pem_keys_rsa_and_p256_only(rsa_key, ec_key):
    assert pem_key(rsa_key.public_pem()).algorithm_name == "RS256"
    assert pem_key(ec_key.public_pem()).algorithm_name == "ES256"
    for bad in (SigningKey.rsa("small", bits=1024), SigningKey.ec("p384", ec.SECP384R1())):
        with pytest.raises(ValueError):
            pem_key(bad.public_pem())


def test_a_pem_file_that_is_missing_or_not_a_key_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"PUSHES_USER_JWT_PUBLIC_KEY=.*cannot be read"):
        PemKeys.from_file(str(tmp_path / "absent.pem"))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    with pytest.raises(ConfigError, match="PUSHES_USER_JWT_PUBLIC_KEY="):
        PemKeys.from_file(str(garbage))


def test_the_source_follows_the_settings(tmp_path, rsa_key):
    pem = tmp_path / "key.pem"
    pem.write_bytes(rsa_key.public_pem())
    common = {"PUSHES_USER_JWT_ISSUER": ISSUER, "PUSHES_USER_JWT_AUDIENCE": AUDIENCE}
    assert key_source_from_settings(Settings.from_env({})) is None
    source = key_source_from_settings(
        Settings.from_env({**common, "PUSHES_USER_JWT_PUBLIC_KEY": str(pem)})
    )
    assert isinstance(source, PemKeys) and source.key.algorithm_name == "RS256"
    url = "https://login.example.test/jwks"
    source = key_source_from_settings(Settings.from_env({**common, "PUSHES_USER_JWKS_URL": url}))
    assert isinstance(source, JwksKeys) and source.url == url


# --- the lookup decision (pure) ----------------------------------------------

PLAN = {"min_fetch_interval": 60.0, "max_age": 600.0}


def state(keys=(), fetched_at=None, attempted_at=None, failing=False, in_flight=False):
    return KeySetState(
        {kid: object() for kid in keys}, fetched_at, attempted_at, failing, in_flight
    )


def test_a_fresh_known_kid_is_used_without_a_fetch():
    assert plan_lookup("a", state(["a"], 100, 100), 150, **PLAN) is Step.USE


def test_a_stale_known_kid_is_used_while_the_set_is_fetched_again():
    assert plan_lookup("a", state(["a"], 100, 100), 800, **PLAN) is Step.USE_AND_REFRESH
    # Not twice: a fetch already running, or one started less than a minute ago.
    assert plan_lookup("a", state(["a"], 100, 790, in_flight=True), 800, **PLAN) is Step.USE
    assert plan_lookup("a", state(["a"], 100, 790, failing=True), 800, **PLAN) is Step.USE


def test_an_unknown_kid_fetches_at_most_once_a_minute():
    assert plan_lookup("b", state(), 0, **PLAN) is Step.FETCH
    assert plan_lookup("b", state(["a"], 100, 100), 160, **PLAN) is Step.FETCH
    refusal = plan_lookup("b", state(["a"], 100, 100), 159, **PLAN)
    assert isinstance(refusal, Refusal) and refusal.code == r.UNKNOWN_KID


def test_a_fetch_in_flight_is_joined_whenever_it_started():
    assert plan_lookup("b", state(["a"], 100, 150, in_flight=True), 151, **PLAN) is Step.FETCH


def test_after_a_fetch_the_answer_comes_from_the_state():
    after = {**PLAN, "may_fetch": False}
    assert plan_lookup("a", state(["a"], 100, 100), 100, **after) is Step.USE
    unknown = plan_lookup("b", state(["a"], 100, 100), 100, **after)
    assert unknown.code == r.UNKNOWN_KID


def test_an_unknown_kid_while_the_set_cannot_be_fetched_is_503_until_the_next_try():
    for failed in (state([], None, 100, failing=True), state(["a"], 50, 100, failing=True)):
        refusal = plan_lookup("b", failed, 130, **PLAN)
        assert (refusal.status, refusal.code, refusal.retry_after) == (503, r.KEYS_UNAVAILABLE, 30)
        assert refusal.headers()["Retry-After"] == "30"


def test_a_token_without_kid_needs_no_lookup():
    assert plan_lookup(None, state(), 0, **PLAN).code == r.MISSING_KID


# --- fetching over HTTP --------------------------------------------------------


def verifier_for(keys: JwksKeys) -> JwtVerifier:
    return JwtVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


async def test_keys_are_fetched_once_and_then_served_from_the_cache(jwks_server, rsa_key, clock):
    keys = JwksKeys(jwks_server.url, clock=clock)
    try:
        verifier = verifier_for(keys)
        for _ in range(5):
            assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
        assert jwks_server.fetches == 1
    finally:
        await keys.close()


async def test_an_unknown_kid_fetches_the_set_again_once_then_is_401(jwks_server, rsa_key, clock):
    keys = JwksKeys(jwks_server.url, clock=clock)
    try:
        verifier = verifier_for(keys)
        assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
        clock.advance(61)
        forged = rsa_key.sign(claims(), kid="unpublished")
        assert (await verifier.verify(forged)).code == r.UNKNOWN_KID
        assert jwks_server.fetches == 2
        # Within the minute, the same unknown kid fetches nothing more.
        assert (await verifier.verify(forged)).code == r.UNKNOWN_KID
        assert jwks_server.fetches == 2
    finally:
        await keys.close()


async def test_a_rotated_key_is_picked_up_and_the_withdrawn_one_refused(
    jwks_server, rsa_key, rsa_key_2, clock
):
    keys = JwksKeys(jwks_server.url, clock=clock)
    try:
        verifier = verifier_for(keys)
        assert isinstance(await verifier.verify(rsa_key.sign(claims("1"))), VerifiedJwt)
        jwks_server.serve(rsa_key_2)  # rsa-1 withdrawn, rsa-2 published
        clock.advance(61)
        outcome = await verifier.verify(rsa_key_2.sign(claims("2")))
        assert isinstance(outcome, VerifiedJwt) and outcome.claims["sub"] == "2"
        assert jwks_server.fetches == 2
        assert (await verifier.verify(rsa_key.sign(claims("1")))).code == r.UNKNOWN_KID
    finally:
        await keys.close()


async def test_a_withdrawn_key_stops_working_after_max_age(jwks_server, rsa_key, ec_key, clock):
    keys = JwksKeys(jwks_server.url, clock=clock, max_age=600)
    try:
        verifier = verifier_for(keys)
        assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
        jwks_server.serve(ec_key)
        clock.advance(601)
        # Served from the stale cache at once; the set is fetched in the background.
        assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
        await keys.refresh()  # waits for the background fetch
        assert jwks_server.fetches == 2
        assert (await verifier.verify(rsa_key.sign(claims()))).code == r.UNKNOWN_KID
    finally:
        await keys.close()


async def test_a_burst_of_unknown_kids_fetches_at_most_once_a_minute(jwks_server, rsa_key, clock):
    keys = JwksKeys(jwks_server.url, clock=clock)
    jwks_server.delay = 0.2  # long enough for the whole burst to wait on one fetch
    try:
        verifier = verifier_for(keys)

        async def burst(n: int, tag: str) -> list[str]:
            tokens = [rsa_key.sign(claims(), kid=f"{tag}-{i}") for i in range(n)]
            outcomes = await asyncio.gather(*(verifier.verify(t) for t in tokens))
            return [o.code for o in outcomes]

        assert set(await burst(50, "a")) == {r.UNKNOWN_KID}
        assert jwks_server.fetches == 1
        clock.advance(30)
        assert set(await burst(50, "b")) == {r.UNKNOWN_KID}
        assert jwks_server.fetches == 1
        clock.advance(31)
        # A valid token in the next burst waits on that burst's one fetch.
        codes = await asyncio.gather(
            burst(20, "c"), verifier.verify(rsa_key.sign(claims(), kid=rsa_key.kid))
        )
        assert set(codes[0]) == {r.UNKNOWN_KID} and isinstance(codes[1], VerifiedJwt)
        assert jwks_server.fetches == 2
    finally:
        await keys.close()


@pytest.mark.parametrize("failure", [500, 404, "garbage"])
async def test_an_unreachable_key_set_is_503_with_retry_after_and_fetched_once_a_minute(
    jwks_server, rsa_key, clock, failure
):
    jwks_server.failure = failure
    keys = JwksKeys(jwks_server.url, clock=clock)
    try:
        verifier = verifier_for(keys)
        refusal = await verifier.verify(rsa_key.sign(claims()))
        assert (refusal.status, refusal.code, refusal.retry_after) == (503, r.KEYS_UNAVAILABLE, 60)
        clock.advance(20)
        refusal = await verifier.verify(rsa_key.sign(claims()))
        assert (refusal.status, refusal.retry_after) == (503, 40)
        assert jwks_server.fetches == 1
        jwks_server.failure = None
        clock.advance(40)
        assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
        assert jwks_server.fetches == 2
    finally:
        await keys.close()


async def test_a_hanging_key_set_times_out_into_a_bounded_503(jwks_server, rsa_key, clock):
    jwks_server.delay = 30
    keys = JwksKeys(jwks_server.url, clock=clock, fetch_timeout=0.3)
    try:
        verifier = verifier_for(keys)
        started = time.monotonic()
        refusal = await verifier.verify(rsa_key.sign(claims()))
        assert time.monotonic() - started < 5
        assert (refusal.status, refusal.code) == (503, r.KEYS_UNAVAILABLE)
    finally:
        await keys.close()


async def test_cached_keys_keep_working_through_an_outage(jwks_server, rsa_key, clock):
    keys = JwksKeys(jwks_server.url, clock=clock, max_age=600)
    try:
        verifier = verifier_for(keys)
        assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
        jwks_server.failure = 503
        clock.advance(3600)
        for _ in range(3):
            assert isinstance(await verifier.verify(rsa_key.sign(claims())), VerifiedJwt)
            await keys.refresh()
        assert keys.state.failing
        # A kid it has never seen may be a new key it cannot get: not the client's fault.
        refusal = await verifier.verify(rsa_key.sign(claims(), kid="new"))
        assert refusal.status == 503
    finally:
        await keys.close()


async def test_an_oversized_key_set_is_refused(jwks_server, rsa_key, clock):
    jwks_server.serve(rsa_key, extra=[{"kty": "oct", "k": "A" * 300_000, "kid": "pad"}])
    keys = JwksKeys(jwks_server.url, clock=clock)
    try:
        refusal = await verifier_for(keys).verify(rsa_key.sign(claims()))
        assert refusal.status == 503 and keys.state.failing
    finally:
        await keys.close()


async def test_a_request_that_gives_up_does_not_cancel_the_shared_fetch(
    jwks_server, rsa_key, clock
):
    jwks_server.delay = 0.3
    keys = JwksKeys(jwks_server.url, clock=clock)
    try:
        verifier = verifier_for(keys)
        impatient = asyncio.ensure_future(verifier.verify(rsa_key.sign(claims())))
        await asyncio.sleep(0.05)
        impatient.cancel()
        outcome = await verifier.verify(rsa_key.sign(claims()))
        assert isinstance(outcome, VerifiedJwt)
        assert jwks_server.fetches == 1
    finally:
        await keys.close()


def test_the_threaded_server_serves_synchronous_callers(rsa_key):
    with ThreadedJwksServer(rsa_key) as server:
        with urllib.request.urlopen(server.url, timeout=5) as response:
            document = json.load(response)
        server.serve()
        with urllib.request.urlopen(server.url, timeout=5) as response:
            after = json.load(response)
    assert list(parse_jwks(document)) == [rsa_key.kid]
    assert after == {"keys": []} and server.fetches == 2
