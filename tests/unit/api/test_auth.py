import pytest

from app.api.auth import check_bearer, reveals_tokens
from app.api.problems import Problem


def test_no_configured_token_means_an_open_api():
    check_bearer("/tokens", None, None)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_checks_need_no_token(path):
    check_bearer(path, None, "secret")


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("", 401),
        ("Basic c2VjcmV0", 401),
        ("Bearer", 401),
        ("Bearer    ", 401),
        ("Bearer wrong", 403),
        ("Bearer secret2", 403),
    ],
)
def test_missing_is_401_and_wrong_is_403(header, status):
    with pytest.raises(Problem) as caught:
        check_bearer("/tokens", header, "secret")
    assert caught.value.status == status
    assert "secret" not in caught.value.message


@pytest.mark.parametrize("header", ["Bearer secret", "bearer secret", "  Bearer  secret "])
def test_the_right_token_passes(header):
    check_bearer("/metrics", header, "secret")


def test_tokens_stay_masked_without_the_admin_header():
    assert reveals_tokens(None, "admin") is False
    assert reveals_tokens(None, None) is False


def test_the_admin_secret_reveals_tokens():
    assert reveals_tokens("admin", "admin") is True


@pytest.mark.parametrize(("header", "configured"), [("wrong", "admin"), ("anything", None)])
def test_a_wrong_admin_secret_is_refused(header, configured):
    with pytest.raises(Problem) as caught:
        reveals_tokens(header, configured)
    assert caught.value.status == 403
