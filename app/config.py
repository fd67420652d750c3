"""Settings of the pushes worker, read once from the environment.

Every setting is an environment variable with a safe default, so a fresh
clone runs against the local broker without any configuration.  The standard
Faust CLI flags still win where they overlap: ``faust --datadir`` (which Faust
passes on as ``F_DATADIR``) and ``faust worker --web-port``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

FAUST_DEFAULT_DATADIR = "{conf.name}-data"
LOG_FORMATS = ("text", "json")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """An environment variable holds a value the worker cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the worker can be told from outside."""

    app_id: str = "pushes"
    bootstrap_servers: str = "127.0.0.1:9092"
    tokens_topic: str = "push-tokens"
    payments_topic: str = "payments"
    partitions: int = 8
    replication_factor: int = 1
    web_port: int = 6066
    data_dir: str = "./data"
    max_devices_per_user: int = 10
    max_record_bytes: int = 64 * 1024
    dead_letter_topic: str = "pushes-dead-letters"
    # Event time: how long a sent notification is remembered for deduplication.
    sent_retention_seconds: int = 7 * 24 * 3600
    # Event time: how long a payment waits for a token that is late; 0 = off.
    late_token_grace_seconds: int = 600
    max_pending_per_user: int = 100
    # How long the group waits for a silent worker before moving its
    # partitions: the failover time after a crash.
    session_timeout_seconds: int = 10
    # Wall time between two retention sweeps of one partition.
    sweep_interval_seconds: int = 30
    # An agent takes up to this many records at a time, waiting at most
    # batch_wait_ms for more, and waits once per batch until Kafka has what
    # the batch wrote.  A crash can repeat at most one batch's notifications.
    batch_max_records: int = 500
    batch_wait_ms: int = 5
    # Inputs are processed in timestamp order; an input with nothing buffered
    # but known lag is always waited for.  This waits for inputs without known
    # lag too (late producers), up to this long; -1 never waits at all.
    max_task_idle_ms: int = 0
    # Process a record off its user's partition at once when this worker owns
    # that partition, instead of forwarding it through the canonical topic.
    skip_local_hops: bool = True
    # How long the producer waits to fill a request (also delays a 202 of the API).
    producer_linger_ms: int = 5
    # Copy a newly assigned table partition's changelog straight into RocksDB
    # before Faust's own (per-record) recovery, which then has nothing left to do.
    bulk_restore: bool = True
    # RocksDB memory per partition database (every table has one per partition).
    rocksdb_block_cache_mb: int = 8
    rocksdb_write_buffer_mb: int = 4
    # Secrets are kept out of repr(): a logged Settings must not leak them.
    # None means "not configured": the API is open / tokens are never shown in full.
    api_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    # The URL other workers use to reach this one (Faust's canonical_url).
    canonical_url: str | None = None
    log_format: str = "text"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            app_id=_text(env, "PUSHES_APP_ID", defaults.app_id),
            bootstrap_servers=_text(env, "KAFKA_BOOTSTRAP_SERVERS", defaults.bootstrap_servers),
            tokens_topic=_text(env, "PUSHES_TOKENS_TOPIC", defaults.tokens_topic),
            payments_topic=_text(env, "PUSHES_PAYMENTS_TOPIC", defaults.payments_topic),
            partitions=_int(env, "PUSHES_PARTITIONS", defaults.partitions, 1, 10_000),
            replication_factor=_int(
                env, "PUSHES_REPLICATION_FACTOR", defaults.replication_factor, 1, 16
            ),
            web_port=_int(env, "PUSHES_WEB_PORT", defaults.web_port, 1, 65535),
            data_dir=_cli_datadir(env) or _text(env, "PUSHES_DATA_DIR", defaults.data_dir),
            max_devices_per_user=_int(
                env, "PUSHES_MAX_DEVICES_PER_USER", defaults.max_devices_per_user, 1, 1000
            ),
            max_record_bytes=_int(
                env, "PUSHES_MAX_RECORD_BYTES", defaults.max_record_bytes, 1024, 10 << 20
            ),
            dead_letter_topic=_text(env, "PUSHES_DEAD_LETTER_TOPIC", defaults.dead_letter_topic),
            sent_retention_seconds=_int(
                env,
                "PUSHES_SENT_RETENTION_SECONDS",
                defaults.sent_retention_seconds,
                60,
                366 * 24 * 3600,
            ),
            late_token_grace_seconds=_int(
                env,
                "PUSHES_LATE_TOKEN_GRACE_SECONDS",
                defaults.late_token_grace_seconds,
                0,
                7 * 24 * 3600,
            ),
            max_pending_per_user=_int(
                env, "PUSHES_MAX_PENDING_PER_USER", defaults.max_pending_per_user, 1, 10_000
            ),
            session_timeout_seconds=_int(
                env, "PUSHES_SESSION_TIMEOUT_SECONDS", defaults.session_timeout_seconds, 6, 300
            ),
            sweep_interval_seconds=_int(
                env, "PUSHES_SWEEP_INTERVAL_SECONDS", defaults.sweep_interval_seconds, 1, 3600
            ),
            batch_max_records=_int(
                env, "PUSHES_BATCH_MAX_RECORDS", defaults.batch_max_records, 1, 100_000
            ),
            batch_wait_ms=_int(env, "PUSHES_BATCH_WAIT_MS", defaults.batch_wait_ms, 1, 10_000),
            max_task_idle_ms=_int(
                env, "PUSHES_MAX_TASK_IDLE_MS", defaults.max_task_idle_ms, -1, 3_600_000
            ),
            skip_local_hops=_flag(env, "PUSHES_SKIP_LOCAL_HOPS", defaults.skip_local_hops),
            producer_linger_ms=_int(
                env, "PUSHES_PRODUCER_LINGER_MS", defaults.producer_linger_ms, 0, 1000
            ),
            bulk_restore=_flag(env, "PUSHES_BULK_RESTORE", defaults.bulk_restore),
            rocksdb_block_cache_mb=_int(
                env, "PUSHES_ROCKSDB_BLOCK_CACHE_MB", defaults.rocksdb_block_cache_mb, 1, 65_536
            ),
            rocksdb_write_buffer_mb=_int(
                env, "PUSHES_ROCKSDB_WRITE_BUFFER_MB", defaults.rocksdb_write_buffer_mb, 1, 4096
            ),
            api_token=_optional(env, "PUSHES_API_TOKEN"),
            admin_token=_optional(env, "PUSHES_ADMIN_TOKEN"),
            canonical_url=_optional(env, "PUSHES_CANONICAL_URL"),
            log_format=_choice(env, "PUSHES_LOG_FORMAT", defaults.log_format, LOG_FORMATS),
            kafka_security_protocol=_choice(
                env,
                "KAFKA_SECURITY_PROTOCOL",
                defaults.kafka_security_protocol,
                SECURITY_PROTOCOLS,
            ),
            kafka_sasl_mechanism=_choice(
                env, "KAFKA_SASL_MECHANISM", defaults.kafka_sasl_mechanism, SASL_MECHANISMS
            ),
            kafka_sasl_username=_optional(env, "KAFKA_SASL_USERNAME"),
            kafka_sasl_password=_optional(env, "KAFKA_SASL_PASSWORD"),
            kafka_ssl_cafile=_optional(env, "KAFKA_SSL_CAFILE"),
            kafka_ssl_certfile=_optional(env, "KAFKA_SSL_CERTFILE"),
            kafka_ssl_keyfile=_optional(env, "KAFKA_SSL_KEYFILE"),
        )._checked()

    def _checked(self) -> Settings:
        # Settings that are fine one by one but useless together: say so at start,
        # not as an authentication timeout minutes later.
        sasl = self.kafka_security_protocol.startswith("SASL_")
        if sasl and not (self.kafka_sasl_username and self.kafka_sasl_password):
            raise ConfigError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if self.kafka_ssl_keyfile and not self.kafka_ssl_certfile:
            raise ConfigError("KAFKA_SSL_KEYFILE is set but KAFKA_SSL_CERTFILE is not")
        if self.canonical_url and not self.canonical_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"PUSHES_CANONICAL_URL={self.canonical_url!r} must start with http:// or https://"
            )
        return self

    @property
    def broker_url(self) -> str:
        """The bootstrap servers as Faust's ``kafka://`` URL list."""
        hosts = [h.strip() for h in self.bootstrap_servers.split(",") if h.strip()]
        return ";".join(f"kafka://{h}" for h in hosts)


def _cli_datadir(env: Mapping[str, str]) -> str | None:
    # `faust --datadir X` reaches the app only as F_DATADIR.  Without the flag
    # the CLI exports its own default template, which must not win over ours.
    value = env.get("F_DATADIR", "").strip()
    return value if value and value != FAUST_DEFAULT_DATADIR else None


def _text(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _optional(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip()
    if not value:
        return default
    for choice in choices:
        if value.upper() == choice.upper():
            return choice
    raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not true or false")


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is outside {low}..{high}")
    return value
