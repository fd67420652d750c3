import ssl

import faust
import pytest

from app.application import faust_credentials
from app.config import Settings
from app.kafka.security import kafka_client_options


def settings(**env: str) -> Settings:
    return Settings.from_env(env)


def test_plaintext_by_default():
    assert kafka_client_options(settings()) == {"security_protocol": "PLAINTEXT"}
    assert faust_credentials(settings()) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(mechanism):
    s = settings(
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="p",
    )
    assert kafka_client_options(s) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    creds = faust_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("u", "p", mechanism)
    assert creds.protocol.value == "SASL_PLAINTEXT"


def test_sasl_ssl_gets_a_context_and_faust_switches_protocol():
    s = settings(
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="p",
    )
    options = kafka_client_options(s)
    assert options["security_protocol"] == "SASL_SSL"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    creds = faust_credentials(s)
    assert isinstance(creds, faust.SASLCredentials) and creds.protocol.value == "SASL_SSL"


def test_ssl_verifies_the_broker(tmp_path):
    options = kafka_client_options(settings(KAFKA_SECURITY_PROTOCOL="SSL"))
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert isinstance(
        faust_credentials(settings(KAFKA_SECURITY_PROTOCOL="SSL")), faust.SSLCredentials
    )


def test_a_missing_ca_file_fails_at_start():
    with pytest.raises(FileNotFoundError):
        kafka_client_options(
            settings(KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE="/nonexistent/ca.pem")
        )
