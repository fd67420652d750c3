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
        (
            {"PUSHES_SKIP_LOCAL_HOPS": "maybe"},
            "PUSHES_SKIP_LOCAL_HOPS='maybe' is not true or false",
        ),
        ({"PUSHES_BATCH_MAX_RECORDS": "0"}, "PUSHES_BATCH_MAX_RECORDS=0 is outside"),
    ],
)
def test_bad_values_fail_loudly(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_security_and_api_settings_default_to_off():
    s = Settings.from_env({})
    assert (s.api_token, s.admin_token, s.canonical_url) == (None, None, None)
    assert (s.log_format, s.kafka_security_protocol, s.kafka_sasl_mechanism) == (
        "text",
        "PLAINTEXT",
        "PLAIN",
    )


def test_security_settings_from_the_environment():
    s = Settings.from_env(
        {
            "PUSHES_API_TOKEN": "api-secret",
            "PUSHES_ADMIN_TOKEN": "admin-secret",
            "PUSHES_CANONICAL_URL": "http://worker-1:6066",
            "PUSHES_LOG_FORMAT": "JSON",
            "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
            "KAFKA_SASL_MECHANISM": "scram-sha-512",
            "KAFKA_SASL_USERNAME": "pushes",
            "KAFKA_SASL_PASSWORD": "kafka-secret",
            "KAFKA_SSL_CAFILE": "/etc/ca.pem",
        }
    )
    assert (s.api_token, s.admin_token, s.canonical_url) == (
        "api-secret",
        "admin-secret",
        "http://worker-1:6066",
    )
    assert s.log_format == "json"
    assert (s.kafka_security_protocol, s.kafka_sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (s.kafka_sasl_username, s.kafka_sasl_password) == ("pushes", "kafka-secret")


def test_secrets_stay_out_of_repr():
    s = Settings.from_env(
        {
            "PUSHES_API_TOKEN": "api-secret",
            "PUSHES_ADMIN_TOKEN": "admin-secret",
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "pushes",
            "KAFKA_SASL_PASSWORD": "kafka-secret",
        }
    )
    text = repr(s)
    assert "secret" not in text and "pushes" in text


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PUSHES_LOG_FORMAT": "xml"}, "PUSHES_LOG_FORMAT='xml' is not one of text, json"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL='TLS' is not one of"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM='GSSAPI' is not one of"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "needs KAFKA_SASL_USERNAME"),
        ({"KAFKA_SSL_KEYFILE": "/k.pem"}, "KAFKA_SSL_CERTFILE is not"),
        ({"PUSHES_CANONICAL_URL": "worker-1:6066"}, "must start with http"),
    ],
)
def test_bad_security_values_fail_loudly(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_performance_settings_have_safe_defaults_and_can_be_changed():
    s = Settings.from_env({})
    assert (s.batch_max_records, s.batch_wait_ms, s.producer_linger_ms) == (500, 5, 5)
    assert s.skip_local_hops and (s.rocksdb_block_cache_mb, s.rocksdb_write_buffer_mb) == (8, 4)
    s = Settings.from_env({"PUSHES_SKIP_LOCAL_HOPS": "false", "PUSHES_BATCH_MAX_RECORDS": "50"})
    assert not s.skip_local_hops and s.batch_max_records == 50
    assert Settings.from_env({"PUSHES_SKIP_LOCAL_HOPS": "Yes"}).skip_local_hops
    assert s.bulk_restore and not Settings.from_env({"PUSHES_BULK_RESTORE": "0"}).bulk_restore


def test_rocksdb_options_bound_every_partition_database():
    from tables.store import MIB, rocksdb_options

    options = rocksdb_options(Settings.from_env({"PUSHES_ROCKSDB_BLOCK_CACHE_MB": "16"}))
    assert options["block_cache_size"] == 16 * MIB
    assert options["write_buffer_size"] == 4 * MIB and options["max_write_buffer_number"] == 2
    # Faust's store pops keys out of the mapping it gets: each table needs its own.
    assert rocksdb_options(Settings()) is not rocksdb_options(Settings())


def test_the_fault_bounds_default_to_seconds_an_operator_expects():
    s = Settings.from_env({})
    assert (s.publish_timeout_seconds, s.route_timeout_seconds) == (5, 5)
    assert s.broker_unreachable_seconds == 10
    s = Settings.from_env(
        {
            "PUSHES_PUBLISH_TIMEOUT_SECONDS": "2",
            "PUSHES_ROUTE_TIMEOUT_SECONDS": "3",
            "PUSHES_BROKER_UNREACHABLE_SECONDS": "30",
        }
    )
    assert (s.publish_timeout_seconds, s.route_timeout_seconds) == (2, 3)
    assert s.broker_unreachable_seconds == 30


@pytest.mark.parametrize(
    "env",
    [
        {"PUSHES_PUBLISH_TIMEOUT_SECONDS": "0"},
        {"PUSHES_ROUTE_TIMEOUT_SECONDS": "0"},
        {"PUSHES_BROKER_UNREACHABLE_SECONDS": "1"},
    ],
)
def test_a_fault_bound_of_no_time_is_refused(env):
    (name,) = env
    with pytest.raises(ConfigError, match=f"{name}=.* is outside"):
        Settings.from_env(env)
