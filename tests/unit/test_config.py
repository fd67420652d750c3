import pytest

from app.config import ConfigError, Settings


def test_defaults_need_no_environment():
    s = Settings.from_env({})
    assert (s.bootstrap_servers, s.tokens_topic, s.payments_topic) == (
        "127.0.0.1:9092",
        "push-tokens",
        "payments",
    )
    assert (s.partitions, s.web_port, s.data_dir, s.app_id) == (8, 6066, "./data", "pushes")


def test_environment_overrides_defaults():
    s = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": "a:1,b:2",
            "PUSHES_PARTITIONS": "16",
            "PUSHES_WEB_PORT": "7000",
            "PUSHES_DATA_DIR": "/var/lib/pushes",
        }
    )
    assert s.partitions == 16 and s.web_port == 7000 and s.data_dir == "/var/lib/pushes"
    assert s.broker_url == "kafka://a:1;kafka://b:2"


def test_faust_datadir_flag_wins_over_our_variable():
    s = Settings.from_env({"PUSHES_DATA_DIR": "/ours", "F_DATADIR": "/from-cli"})
    assert s.data_dir == "/from-cli"


def test_faust_cli_default_datadir_does_not_override_ours():
    # The faust CLI exports its default template when --datadir is not given.
    assert Settings.from_env({"F_DATADIR": "{conf.name}-data"}).data_dir == "./data"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUSHES_PARTITIONS": "eight"}, "PUSHES_PARTITIONS='eight' is not a whole number"),
        ({"PUSHES_PARTITIONS": "0"}, "PUSHES_PARTITIONS=0 is outside"),
        ({"PUSHES_WEB_PORT": "70000"}, "PUSHES_WEB_PORT=70000 is outside"),
    ],
)
def test_bad_values_fail_loudly(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
