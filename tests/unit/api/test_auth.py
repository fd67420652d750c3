import pytest

from app.api.auth import reveals_tokens
from app.api.problems import Problem


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
