"""The FCM sender refuses unusable settings when it is built, naming the file."""

import json
import shutil

import pytest

from app.notify.base import Sender
from app.notify.fake_fcm import make_service_account
from app.notify.fcm import FcmConfigError, FcmSender


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    # One RSA key for the module: generating one per test is the slow part.
    path = tmp_path_factory.mktemp("key") / "template.json"
    make_service_account(path, "http://127.0.0.1:9/token", "proj-a")
    return path


@pytest.fixture
def key_file(template, tmp_path):
    path = tmp_path / "sa.json"
    shutil.copyfile(template, path)
    path.chmod(template.stat().st_mode)
    return path


def rewrite(path, **changes):
    info = json.loads(path.read_text())
    for name, value in changes.items():
        if value is None:
            info.pop(name)
        else:
            info[name] = value
    path.write_text(json.dumps(info))


def test_a_good_file_gives_the_project_and_the_url(key_file):
    sender = FcmSender(key_file, base_url="http://127.0.0.1:9/")
    assert sender.project_id == "proj-a"
    assert sender.url == "http://127.0.0.1:9/v1/projects/proj-a/messages:send"
    assert sender.name == "fcm"
    assert isinstance(sender, Sender)


def test_a_configured_project_wins_over_the_files(key_file):
    assert FcmSender(key_file, project_id="proj-b").project_id == "proj-b"


def test_the_key_file_is_private(template):
    assert template.stat().st_mode & 0o077 == 0


def test_a_missing_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(FcmConfigError, match=r"nope\.json") as caught:
        FcmSender(missing)
    assert "cannot be read" in str(caught.value)


def test_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "garbage.json"
    path.write_text("{not json")
    with pytest.raises(FcmConfigError, match=r"garbage\.json.*not JSON"):
        FcmSender(path)


def test_a_file_of_another_kind(key_file):
    rewrite(key_file, type="authorized_user")
    with pytest.raises(FcmConfigError, match=r"sa\.json.*service-account"):
        FcmSender(key_file)


@pytest.mark.parametrize(
    "changes",
    [
        {"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"},
        {"private_key": None},
        {"client_email": None},
        {"token_uri": None},
    ],
)
def test_a_file_without_a_usable_key(key_file, changes):
    rewrite(key_file, **changes)
    with pytest.raises(FcmConfigError, match=r"sa\.json"):
        FcmSender(key_file)


def test_no_project_anywhere(key_file):
    rewrite(key_file, project_id=None)
    with pytest.raises(FcmConfigError, match=r"sa\.json has no project_id"):
        FcmSender(key_file)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_in_flight": 0},
        {"connect_timeout_s": 0},
        {"read_timeout_s": -1},
        {"ttl_s": -1},
        {"ttl_s": 28 * 24 * 3600 + 1},
        {"base_url": "fcm.googleapis.com"},
    ],
)
def test_bad_numbers_and_urls(key_file, settings):
    with pytest.raises(FcmConfigError):
        FcmSender(key_file, **settings)


async def test_send_before_start_is_a_programming_error(key_file):
    with pytest.raises(RuntimeError, match="start"):
        await FcmSender(key_file).send([])
