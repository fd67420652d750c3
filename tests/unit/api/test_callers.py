"""Who the caller is and whether it may act for a user: the pure decisions, and present()."""

from __future__ import annotations

import pytest

from app.api import refusals as r
from app.api.callers import (
    ANONYMOUS,
    SERVICE,
    AuthConfig,
    CallerKind,
    NoCredentials,
    ServiceCredentials,
    authorize,
    bearer_token,
    decide,
    identify,
    present,
    read_credentials,
    reveal_tokens,
    user_caller,
)
from app.api.jwt_keys import PemKeys, pem_key
from app.api.refusals import Refusal
from app.api.user_jwt import JwtVerifier, VerifiedJwt
from app.config import Settings
from tests.jwks_server import AUDIENCE, ISSUER, claims

SERVICE_TOKEN = "s3rvice-t0ken"
BOTH = AuthConfig(service_token=SERVICE_TOKEN, user_jwt=True)
SERVICE_ONLY = AuthConfig(service_token=SERVICE_TOKEN)
USERS_ONLY = AuthConfig(user_jwt=True)
OPEN = AuthConfig()


def jwt_for(user: object, claim: str = "sub") -> VerifiedJwt:
    return VerifiedJwt({claim: user, "iss": ISSUER, "aud": AUDIENCE, "exp": 1})


# --- the Authorization header ------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "   "])
def test_no_header_is_no_credentials(header):
    assert bearer_token(header) is None


@pytest.mark.parametrize("header", ["Basic c2VjcmV0", "Token abc", "abc"])
def test_another_scheme_is_refused(header):
    assert bearer_token(header).code == r.NOT_BEARER


@pytest.mark.parametrize("header", ["Bearer", "Bearer    "])
def test_bearer_without_a_value_is_missing_credentials(header):
    assert bearer_token(header).code == r.MISSING_CREDENTIALS


@pytest.mark.parametrize("header", ["Bearer abc", "bearer abc", "  BEARER   abc  "])
def test_the_bearer_value_is_read_in_any_case_and_spacing(header):
    assert bearer_token(header) == "abc"


def test_the_service_token_is_recognised_before_any_jwt_check():
    for config in (BOTH, SERVICE_ONLY):
        assert read_credentials(f"Bearer {SERVICE_TOKEN}", config) == ServiceCredentials()
    # Anything else is a JWT to verify, or, without user JWTs, a wrong token.
    assert read_credentials("Bearer eyJ.x.y", BOTH) == "eyJ.x.y"
    assert read_credentials("Bearer eyJ.x.y", SERVICE_ONLY).code == r.BAD_SERVICE_TOKEN
    assert read_credentials(f"Bearer {SERVICE_TOKEN}x", SERVICE_ONLY).status == 403


# --- identify: who is it -----------------------------------------------------


def test_an_open_api_makes_everyone_anonymous_whatever_they_present():
    for presented in (NoCredentials(), ServiceCredentials(), jwt_for("1"), r.expired()):
        assert identify(OPEN, presented) == ANONYMOUS


@pytest.mark.parametrize("config", [BOTH, SERVICE_ONLY, USERS_ONLY])
def test_no_credentials_when_auth_is_configured_is_401(config):
    refusal = identify(config, NoCredentials())
    assert (refusal.status, refusal.code) == (401, r.MISSING_CREDENTIALS)
    assert refusal.headers() == {"WWW-Authenticate": 'Bearer realm="pushes"'}


def test_a_refused_jwt_stays_refused_with_an_invalid_token_challenge():
    refusal = identify(BOTH, r.bad_signature())
    assert refusal.code == r.BAD_SIGNATURE
    assert refusal.headers()["WWW-Authenticate"] == 'Bearer realm="pushes", error="invalid_token"'


@pytest.mark.parametrize("value", [42, "42", " 42 "])
def test_the_user_claim_is_normalised(value):
    assert identify(BOTH, jwt_for(value)) == user_caller("42")


def test_a_configured_claim_name_is_read():
    config = AuthConfig(user_jwt=True, user_claim="uid")
    assert identify(config, jwt_for("7", claim="uid")) == user_caller("7")
    refusal = identify(config, jwt_for("7", claim="sub"))
    assert (refusal.status, refusal.code) == (401, r.USER_CLAIM_MISSING)
    assert "'uid'" in refusal.message


@pytest.mark.parametrize("value", ["", "   ", True, 4.2, ["42"], {"id": 42}, "a" * 300, "a\x00b"])
def test_a_user_claim_that_is_no_user_id_is_401(value):
    refusal = identify(BOTH, jwt_for(value))
    assert (refusal.status, refusal.code) == (401, r.USER_CLAIM_INVALID)


def test_the_service_token_identifies_the_service():
    assert identify(BOTH, ServiceCredentials()) == SERVICE


# --- authorize: may it act for this user ---------------------------------------


@pytest.mark.parametrize("target", ["42", 42, " 42 ", "someone-else", None])
def test_the_service_acts_for_any_user_and_any_endpoint(target):
    assert authorize(SERVICE, target) == SERVICE
    assert decide(BOTH, ServiceCredentials(), target) == SERVICE


@pytest.mark.parametrize("target", [42, "42", " 42 "])
def test_a_user_acts_for_itself_however_the_id_is_written(target):
    assert authorize(user_caller("42"), target) == user_caller("42")
    assert decide(BOTH, jwt_for(" 42"), target).kind is CallerKind.USER


@pytest.mark.parametrize("target", ["43", 420, "4 2", "042"])
def test_a_user_acting_for_another_user_is_403(target):
    refusal = decide(BOTH, jwt_for("42"), target)
    assert (refusal.status, refusal.code) == (403, r.USER_MISMATCH)
    assert "43" not in refusal.message and "42" not in refusal.message


def test_a_user_on_a_service_endpoint_is_403():
    refusal = decide(BOTH, jwt_for("42"), None)
    assert (refusal.status, refusal.code) == (403, r.SERVICE_ONLY)


def test_a_user_with_an_invalid_target_user_id_is_400():
    refusal = authorize(user_caller("42"), "")
    assert (refusal.status, refusal.code) == (400, r.BAD_USER_ID)


def test_anonymous_callers_of_an_open_api_may_do_anything():
    assert decide(OPEN, NoCredentials(), "anyone") == ANONYMOUS
    assert decide(OPEN, NoCredentials(), None) == ANONYMOUS


# --- unmasking push tokens ----------------------------------------------------


def test_users_always_see_masked_tokens_and_asking_for_more_is_403():
    assert reveal_tokens(user_caller("42"), None, "admin") is False
    refusal = reveal_tokens(user_caller("42"), "admin", "admin")
    assert (refusal.status, refusal.code) == (403, r.USER_CANNOT_UNMASK)


def test_the_service_unmasks_with_the_admin_secret_only():
    assert reveal_tokens(SERVICE, None, "admin") is False
    assert reveal_tokens(SERVICE, "admin", "admin") is True
    refusal = reveal_tokens(SERVICE, "wrong", "admin")
    assert (refusal.status, refusal.code) == (403, r.BAD_ADMIN_TOKEN)
    assert reveal_tokens(ANONYMOUS, "admin", "admin") is True


# --- present: the header, verified ----------------------------------------------


@pytest.fixture
def verifier(rsa_key) -> JwtVerifier:
    return JwtVerifier(PemKeys(pem_key(rsa_key.public_pem())), issuer=ISSUER, audience=AUDIENCE)


async def test_present_verifies_a_jwt_and_identifies_its_user(verifier, rsa_key):
    presented = await present(f"Bearer {rsa_key.sign(claims(42))}", BOTH, verifier)
    assert isinstance(presented, VerifiedJwt)
    assert decide(BOTH, presented, "42") == user_caller("42")
    assert decide(BOTH, presented, "43").code == r.USER_MISMATCH


async def test_present_refuses_what_is_neither_service_token_nor_jwt(verifier):
    presented = await present("Bearer nonsense", BOTH, verifier)
    assert isinstance(presented, Refusal) and presented.code == r.MALFORMED_TOKEN
    assert "nonsense" not in presented.message


async def test_present_on_an_open_api_reads_nothing(verifier):
    assert await present("Basic zzz", OPEN, None) == NoCredentials()


async def test_present_needs_a_verifier_when_user_jwts_are_on():
    with pytest.raises(RuntimeError):
        await present("Bearer a.b.c", USERS_ONLY, None)


def test_the_config_follows_the_settings():
    config = AuthConfig.from_settings(
        Settings.from_env(
            {
                "PUSHES_API_TOKEN": "s3cr3t-value",
                "PUSHES_USER_JWKS_URL": "https://login.example.test/jwks",
                "PUSHES_USER_JWT_ISSUER": ISSUER,
                "PUSHES_USER_JWT_AUDIENCE": AUDIENCE,
                "PUSHES_USER_JWT_CLAIM": "uid",
            }
        )
    )
    assert (config.service_token, config.user_jwt, config.user_claim) == (
        "s3cr3t-value",
        True,
        "uid",
    )
    assert "s3cr3t-value" not in repr(config)
    assert AuthConfig.from_settings(Settings.from_env({})).open
