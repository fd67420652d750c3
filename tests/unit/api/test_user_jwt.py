"""Every way a user JWT is refused, and the ones accepted, with keys made here.

Keys come over real HTTP from the local JWKS server, or from a PEM file;
PyJWT checks ``exp``/``nbf``/``iat`` against the real clock, so the times
below sit well outside (or inside) the 30 s leeway.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from app.api import refusals as r
from app.api.jwt_keys import JwksKeys, PemKeys, pem_key
from app.api.refusals import Refusal
from app.api.user_jwt import MAX_TOKEN_CHARS, JwtVerifier, VerifiedJwt
from tests.jwks_server import AUDIENCE, ISSUER, JwksServer, SigningKey, claims, forge

LEEWAY = 30


@pytest.fixture
async def jwks_verifier(jwks_server: JwksServer, clock) -> AsyncIterator[JwtVerifier]:
    keys = JwksKeys(jwks_server.url, clock=clock)
    yield JwtVerifier(keys, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=LEEWAY)
    await keys.close()


def pem_verifier(key: SigningKey) -> JwtVerifier:
    source = PemKeys(pem_key(key.public_pem()))
    return JwtVerifier(source, issuer=ISSUER, audience=AUDIENCE, leeway_seconds=LEEWAY)


async def refused(verifier: JwtVerifier, token: str) -> Refusal:
    outcome = await verifier.verify(token)
    assert isinstance(outcome, Refusal), outcome
    # No refusal repeats the token or a piece of it.
    for piece in [token, *token.split(".")]:
        if len(piece) > 8:
            assert piece not in outcome.message
    return outcome


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
async def test_a_valid_token_gives_its_claims(jwks_verifier, key_name, request):
    key = request.getfixturevalue(key_name)
    outcome = await jwks_verifier.verify(key.sign(claims("42")))
    assert isinstance(outcome, VerifiedJwt)
    assert outcome.claims["sub"] == "42"


@pytest.mark.parametrize("key_name", ["rsa_key", "ec_key"])
async def test_a_pem_key_verifies_its_tokens_whatever_their_kid(key_name, request):
    key = request.getfixturevalue(key_name)
    verifier = pem_verifier(key)
    for kid in (True, False, "anything"):
        outcome = await verifier.verify(key.sign(claims("7"), kid=kid))
        assert isinstance(outcome, VerifiedJwt) and outcome.claims["sub"] == "7"


async def test_an_audience_list_that_includes_ours_is_accepted(jwks_verifier, rsa_key):
    token = rsa_key.sign(claims(aud=["other-api", AUDIENCE]))
    assert isinstance(await jwks_verifier.verify(token), VerifiedJwt)


async def test_times_within_the_leeway_are_accepted(jwks_verifier, rsa_key):
    now = int(time.time())
    token = rsa_key.sign(claims(exp=now - LEEWAY // 3, nbf=now + LEEWAY // 3, iat=now + 5))
    assert isinstance(await jwks_verifier.verify(token), VerifiedJwt)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": -120}, r.EXPIRED),
        ({"nbf": 120}, r.NOT_YET_VALID),
        ({"iat": 120}, r.NOT_YET_VALID),
        ({"iss": "https://evil.example.test/"}, r.WRONG_ISSUER),
        ({"aud": "another-api"}, r.WRONG_AUDIENCE),
        ({"aud": ["a", "b"]}, r.WRONG_AUDIENCE),
    ],
)
async def test_claims_out_of_bounds_are_401(jwks_verifier, rsa_key, ec_key, overrides, code):
    now = int(time.time())
    relative = {k: now + v if k in ("exp", "nbf", "iat") else v for k, v in overrides.items()}
    for key in (rsa_key, ec_key):
        refusal = await refused(jwks_verifier, key.sign(claims(**relative)))
        assert (refusal.status, refusal.code) == (401, code)


@pytest.mark.parametrize("claim", ["exp", "iss", "aud"])
async def test_a_required_claim_missing_is_401_naming_it(jwks_verifier, rsa_key, claim):
    refusal = await refused(jwks_verifier, rsa_key.sign(claims(**{claim: None})))
    assert (refusal.status, refusal.code) == (401, r.MISSING_CLAIM)
    assert repr(claim) in refusal.message


async def test_a_text_iat_is_a_claim_of_the_wrong_type(jwks_verifier, rsa_key):
    refusal = await refused(jwks_verifier, rsa_key.sign(claims(iat="yesterday")))
    assert (refusal.status, refusal.code) == (401, r.INVALID_CLAIM)


async def test_a_signature_by_another_key_is_401(jwks_verifier, rsa_key, rsa_key_2, ec_key):
    # Signed by keys the JWKS does not hold, under kids it does.
    for impostor, victim in ((rsa_key_2, rsa_key), (SigningKey.ec("x"), ec_key)):
        token = impostor.sign(claims(), kid=victim.kid)
        refusal = await refused(jwks_verifier, token)
        assert (refusal.status, refusal.code) == (401, r.BAD_SIGNATURE)


async def test_a_tampered_payload_is_a_bad_signature(jwks_verifier, rsa_key):
    header, _, signature = rsa_key.sign(claims("42")).split(".")
    other_payload = rsa_key.sign(claims("43")).split(".")[1]
    refusal = await refused(jwks_verifier, f"{header}.{other_payload}.{signature}")
    assert refusal.code == r.BAD_SIGNATURE


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
async def test_alg_none_is_401(jwks_verifier, rsa_key, alg):
    token = forge({"alg": alg, "typ": "JWT", "kid": rsa_key.kid}, claims(), None)
    refusal = await refused(jwks_verifier, token)
    assert (refusal.status, refusal.code) == (401, r.ALG_NONE)
    assert "none" in refusal.message


async def test_hs256_keyed_with_the_public_key_pem_is_401(jwks_verifier, rsa_key):
    # The classic confusion attack: the public key is public, so anyone can
    # "sign" with it as an HMAC secret.
    for verifier in (jwks_verifier, pem_verifier(rsa_key)):
        token = forge(
            {"alg": "HS256", "typ": "JWT", "kid": rsa_key.kid}, claims(), rsa_key.public_pem()
        )
        refusal = await refused(verifier, token)
        assert (refusal.status, refusal.code) == (401, r.ALG_NOT_ALLOWED)
        assert "'HS256'" in refusal.message


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES384", "EdDSA", "HS512"])
async def test_other_algorithms_are_401(jwks_verifier, rsa_key, alg):
    token = forge({"alg": alg, "kid": rsa_key.kid}, claims(), b"x")
    refusal = await refused(jwks_verifier, token)
    assert (refusal.status, refusal.code) == (401, r.ALG_NOT_ALLOWED)
    assert repr(alg) in refusal.message


async def test_an_unknown_algorithm_name_is_not_repeated(jwks_verifier):
    token = forge({"alg": "<script>", "kid": "k"}, claims(), b"x")
    refusal = await refused(jwks_verifier, token)
    assert refusal.code == r.ALG_NOT_ALLOWED and "<script>" not in refusal.message


async def test_an_allowed_algorithm_with_the_other_kind_of_key_is_401(
    jwks_verifier, rsa_key, ec_key
):
    # ES256 in the header, but the kid names the RSA key.
    token = ec_key.sign(claims(), kid=rsa_key.kid)
    refusal = await refused(jwks_verifier, token)
    assert (refusal.status, refusal.code) == (401, r.ALG_NOT_ALLOWED)
    assert "RS256" in refusal.message


async def test_a_token_without_kid_is_401_against_a_key_set(jwks_verifier, rsa_key):
    refusal = await refused(jwks_verifier, rsa_key.sign(claims(), kid=False))
    assert (refusal.status, refusal.code) == (401, r.MISSING_KID)


async def test_an_unknown_kid_is_401(jwks_verifier, rsa_key):
    refusal = await refused(jwks_verifier, rsa_key.sign(claims(), kid="not-published"))
    assert (refusal.status, refusal.code) == (401, r.UNKNOWN_KID)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b.c",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "....",
        "x" * (MAX_TOKEN_CHARS + 1),
    ],
)
async def test_malformed_tokens_are_401(jwks_verifier, token):
    refusal = await refused(jwks_verifier, token)
    assert (refusal.status, refusal.code) == (401, r.MALFORMED_TOKEN)


async def test_a_non_text_kid_is_malformed(jwks_verifier, rsa_key):
    token = forge({"alg": "RS256", "kid": 7}, claims(), b"x")
    assert (await refused(jwks_verifier, token)).code == r.MALFORMED_TOKEN


async def test_a_text_exp_is_malformed(jwks_verifier, rsa_key):
    refusal = await refused(jwks_verifier, rsa_key.sign(claims(exp="tomorrow")))
    assert (refusal.status, refusal.code) == (401, r.MALFORMED_TOKEN)
