"""The settings of user JWTs and abuse limits."""

import pytest

from app.config import ConfigError, Settings

JWKS = "https://login.example.test/.well-known/jwks.json"
ISSUER_AUDIENCE = {
    "PUSHES_USER_JWT_ISSUER": "https://login.example.test/",
    "PUSHES_USER_JWT_AUDIENCE": "pushes-api",
}


def test_defaults_leave_user_jwts_off_and_the_limits_on():
    s = Settings.from_env({})
    assert not s.user_jwt_enabled
    assert (s.user_jwks_url, s.user_jwt_public_key, s.user_jwt_issuer, s.user_jwt_audience) == (
        None,
        None,
        None,
        None,
    )
    assert (s.user_jwt_claim, s.user_jwt_leeway_seconds, s.require_auth) == ("sub", 30, False)
    assert s.registrations_per_user_per_hour == 20
    assert s.failed_requests_per_address_per_minute == 60
    assert s.trusted_proxy_hops == 0


def test_a_jwks_url_with_issuer_and_audience():
    s = Settings.from_env(
        {
            "PUSHES_USER_JWKS_URL": f"  {JWKS} ",
            **ISSUER_AUDIENCE,
            "PUSHES_USER_JWT_CLAIM": "uid",
            "PUSHES_USER_JWT_LEEWAY_SECONDS": "5",
            "PUSHES_REQUIRE_AUTH": "yes",
            "PUSHES_REGISTRATIONS_PER_USER_PER_HOUR": "3",
            "PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE": "100",
            "PUSHES_TRUSTED_PROXY_HOPS": "2",
        }
    )
    assert s.user_jwt_enabled and s.user_jwks_url == JWKS
    assert (s.user_jwt_issuer, s.user_jwt_audience) == (
        ISSUER_AUDIENCE["PUSHES_USER_JWT_ISSUER"],
        ISSUER_AUDIENCE["PUSHES_USER_JWT_AUDIENCE"],
    )
    assert (s.user_jwt_claim, s.user_jwt_leeway_seconds, s.require_auth) == ("uid", 5, True)
    assert (s.registrations_per_user_per_hour, s.failed_requests_per_address_per_minute) == (3, 100)
    assert s.trusted_proxy_hops == 2


def test_a_public_key_file_enables_user_jwts():
    s = Settings.from_env(
        {"PUSHES_USER_JWT_PUBLIC_KEY": "/etc/pushes/users.pem", **ISSUER_AUDIENCE}
    )
    assert s.user_jwt_enabled and s.user_jwt_public_key == "/etc/pushes/users.pem"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PUSHES_USER_JWKS_URL": JWKS},
            "need PUSHES_USER_JWT_ISSUER and PUSHES_USER_JWT_AUDIENCE",
        ),
        (
            {"PUSHES_USER_JWKS_URL": JWKS, "PUSHES_USER_JWT_ISSUER": "i"},
            "need PUSHES_USER_JWT_ISSUER and PUSHES_USER_JWT_AUDIENCE",
        ),
        (
            {"PUSHES_USER_JWT_PUBLIC_KEY": "k.pem", "PUSHES_USER_JWT_AUDIENCE": "a"},
            "need PUSHES_USER_JWT_ISSUER and PUSHES_USER_JWT_AUDIENCE",
        ),
        (
            {
                "PUSHES_USER_JWKS_URL": JWKS,
                "PUSHES_USER_JWT_PUBLIC_KEY": "k.pem",
                **ISSUER_AUDIENCE,
            },
            "both set; choose one",
        ),
        (
            {"PUSHES_USER_JWKS_URL": "ftp://x/jwks", **ISSUER_AUDIENCE},
            "must start with https:// or http://",
        ),
        (ISSUER_AUDIENCE, "are set but no key is"),
        ({"PUSHES_USER_JWT_AUDIENCE": "a"}, "are set but no key is"),
        (
            {"PUSHES_USER_JWKS_URL": JWKS, **ISSUER_AUDIENCE, "PUSHES_USER_JWT_CLAIM": "user id"},
            "PUSHES_USER_JWT_CLAIM='user id' is not a claim name",
        ),
        ({"PUSHES_USER_JWT_LEEWAY_SECONDS": "-1"}, "PUSHES_USER_JWT_LEEWAY_SECONDS=-1 is outside"),
        ({"PUSHES_USER_JWT_LEEWAY_SECONDS": "3600"}, "is outside 0..300"),
        ({"PUSHES_REQUIRE_AUTH": "sometimes"}, "PUSHES_REQUIRE_AUTH='sometimes' is not true"),
        ({"PUSHES_REGISTRATIONS_PER_USER_PER_HOUR": "0"}, "is outside 1.."),
        ({"PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE": "lots"}, "is not a whole number"),
        ({"PUSHES_TRUSTED_PROXY_HOPS": "-1"}, "PUSHES_TRUSTED_PROXY_HOPS=-1 is outside"),
    ],
)
def test_unusable_auth_settings_fail_at_start(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_require_auth_refuses_an_open_api():
    with pytest.raises(ConfigError, match="PUSHES_REQUIRE_AUTH=true but the API would be open"):
        Settings.from_env({"PUSHES_REQUIRE_AUTH": "true"})


@pytest.mark.parametrize(
    "env",
    [
        {"PUSHES_API_TOKEN": "s3cret"},
        {"PUSHES_USER_JWKS_URL": JWKS, **ISSUER_AUDIENCE},
        {"PUSHES_USER_JWT_PUBLIC_KEY": "k.pem", **ISSUER_AUDIENCE},
    ],
)
def test_require_auth_is_satisfied_by_either_kind_of_credential(env):
    assert Settings.from_env({"PUSHES_REQUIRE_AUTH": "1", **env}).require_auth
