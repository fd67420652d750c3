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
SENDERS = ("log", "fcm")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# Names that hold a JWT claim: no spaces or control characters.
_CLAIM_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:/")


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
    # How long POST /tokens and DELETE wait for Kafka's acknowledgement
    # (the enqueue included) before answering 503.
    publish_timeout_seconds: int = 5
    # How long GET /tokens/{user_id} waits for the owning worker before 504.
    route_timeout_seconds: int = 5
    # No successful round trip to the broker for this long: not ready.
    broker_unreachable_seconds: int = 10
    # Wall time between two retention sweep steps of one partition (each step
    # looks at a bounded number of keys per table).
    sweep_interval_seconds: int = 3
    # An agent takes up to this many records at a time, waiting at most
    # batch_wait_ms for more, and waits once per batch until Kafka has what
    # the batch wrote.  A crash can repeat at most one batch's notifications.
    batch_max_records: int = 500
    batch_wait_ms: int = 5
    # Inputs are processed in timestamp order; an input with nothing buffered
    # but known lag is always waited for.  This waits for inputs without known
    # lag too (late producers), up to this long; -1 never waits at all.
    max_task_idle_ms: int = 0
    # A worker that receives forwarded records waits for news of how far the
    # worker forwarding them has got, up to this long, then goes on without it.
    # A crashed worker's partitions move after the session timeout, which ends
    # the wait anyway; this bounds it for a worker still in the group but
    # silent (recovering large tables, stuck).  0 never waits.
    hop_wait_ms: int = 30_000
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
    # Where notifications go: "log" (one line per device) or "fcm".
    sender: str = "log"
    # FCM HTTP v1: a service-account JSON file (GOOGLE_APPLICATION_CREDENTIALS),
    # the project (else the file's project_id) and the endpoint.
    fcm_credentials: str | None = None
    fcm_project_id: str | None = None
    fcm_base_url: str = "https://fcm.googleapis.com"
    fcm_max_in_flight: int = 256
    fcm_connect_timeout_seconds: int = 5
    fcm_read_timeout_seconds: int = 5
    # How long a notification is worth delivering: its TTL on the phone, and
    # the deadline of its retries.
    push_ttl_seconds: int = 3600
    undeliverable_topic: str = "pushes-undeliverable"
    # Percent of at least 100 sends within a minute answered "token gone"
    # above which tokens are no longer removed (a wrong project, not dead phones).
    token_gone_breaker_percent: int = 50
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
    # User JWTs (mobile apps acting for themselves): keys from a JWKS URL or a
    # PEM public key file, never both; issuer and audience are then required.
    user_jwks_url: str | None = None
    user_jwt_public_key: str | None = None
    user_jwt_issuer: str | None = None
    user_jwt_audience: str | None = None
    user_jwt_claim: str = "sub"
    user_jwt_leeway_seconds: int = 30
    # Refuse to start with an open API (no service token and no user-JWT keys).
    require_auth: bool = False
    registrations_per_user_per_hour: int = 20
    # 401, 403 and 429 answers one client address may get per minute before
    # all its requests are answered 429 (the service token is exempt).
    failed_requests_per_address_per_minute: int = 60
    # Proxies in front of the worker that append to X-Forwarded-For: how many
    # of its right-most entries to skip to find the client's address.
    trusted_proxy_hops: int = 0

    @property
    def user_jwt_enabled(self) -> bool:
        """Whether user JWTs are accepted (a key source is configured)."""
        return bool(self.user_jwks_url or self.user_jwt_public_key)

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
            publish_timeout_seconds=_int(
                env, "PUSHES_PUBLISH_TIMEOUT_SECONDS", defaults.publish_timeout_seconds, 1, 120
            ),
            route_timeout_seconds=_int(
                env, "PUSHES_ROUTE_TIMEOUT_SECONDS", defaults.route_timeout_seconds, 1, 120
            ),
            broker_unreachable_seconds=_int(
                env,
                "PUSHES_BROKER_UNREACHABLE_SECONDS",
                defaults.broker_unreachable_seconds,
                2,
                3600,
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
            hop_wait_ms=_int(env, "PUSHES_HOP_WAIT_MS", defaults.hop_wait_ms, 0, 3_600_000),
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
            sender=_choice(env, "PUSHES_SENDER", defaults.sender, SENDERS),
            fcm_credentials=_optional(env, "GOOGLE_APPLICATION_CREDENTIALS"),
            fcm_project_id=_optional(env, "PUSHES_FCM_PROJECT_ID"),
            fcm_base_url=_text(env, "PUSHES_FCM_BASE_URL", defaults.fcm_base_url),
            fcm_max_in_flight=_int(
                env, "PUSHES_FCM_MAX_IN_FLIGHT", defaults.fcm_max_in_flight, 1, 10_000
            ),
            fcm_connect_timeout_seconds=_int(
                env,
                "PUSHES_FCM_CONNECT_TIMEOUT_SECONDS",
                defaults.fcm_connect_timeout_seconds,
                1,
                120,
            ),
            fcm_read_timeout_seconds=_int(
                env, "PUSHES_FCM_READ_TIMEOUT_SECONDS", defaults.fcm_read_timeout_seconds, 1, 300
            ),
            push_ttl_seconds=_int(
                env, "PUSHES_PUSH_TTL_SECONDS", defaults.push_ttl_seconds, 60, 28 * 24 * 3600
            ),
            undeliverable_topic=_text(
                env, "PUSHES_UNDELIVERABLE_TOPIC", defaults.undeliverable_topic
            ),
            token_gone_breaker_percent=_int(
                env, "PUSHES_TOKEN_GONE_BREAKER", defaults.token_gone_breaker_percent, 1, 100
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
            user_jwks_url=_optional(env, "PUSHES_USER_JWKS_URL"),
            user_jwt_public_key=_optional(env, "PUSHES_USER_JWT_PUBLIC_KEY"),
            user_jwt_issuer=_optional(env, "PUSHES_USER_JWT_ISSUER"),
            user_jwt_audience=_optional(env, "PUSHES_USER_JWT_AUDIENCE"),
            user_jwt_claim=_text(env, "PUSHES_USER_JWT_CLAIM", defaults.user_jwt_claim),
            user_jwt_leeway_seconds=_int(
                env, "PUSHES_USER_JWT_LEEWAY_SECONDS", defaults.user_jwt_leeway_seconds, 0, 300
            ),
            require_auth=_flag(env, "PUSHES_REQUIRE_AUTH", defaults.require_auth),
            registrations_per_user_per_hour=_int(
                env,
                "PUSHES_REGISTRATIONS_PER_USER_PER_HOUR",
                defaults.registrations_per_user_per_hour,
                1,
                100_000,
            ),
            failed_requests_per_address_per_minute=_int(
                env,
                "PUSHES_FAILED_REQUESTS_PER_ADDRESS_PER_MINUTE",
                defaults.failed_requests_per_address_per_minute,
                1,
                1_000_000,
            ),
            trusted_proxy_hops=_int(
                env, "PUSHES_TRUSTED_PROXY_HOPS", defaults.trusted_proxy_hops, 0, 16
            ),
        )._checked()

    def _checked(self) -> Settings:
        # Settings that are fine one by one but useless together: say so at start,
        # not as an authentication timeout minutes later.
        if self.sender == "fcm" and not self.fcm_credentials:
            raise ConfigError(
                "PUSHES_SENDER=fcm needs GOOGLE_APPLICATION_CREDENTIALS: the path of a "
                "Firebase service-account JSON file"
            )
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
        self._check_auth()
        return self

    def _check_auth(self) -> None:
        if self.user_jwks_url and self.user_jwt_public_key:
            raise ConfigError(
                "PUSHES_USER_JWKS_URL and PUSHES_USER_JWT_PUBLIC_KEY are both set; choose one"
            )
        if self.user_jwks_url and not self.user_jwks_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"PUSHES_USER_JWKS_URL={self.user_jwks_url!r} must start with https:// or http://"
            )
        # Without both, a token minted by any issuer for any service would do.
        if self.user_jwt_enabled and not (self.user_jwt_issuer and self.user_jwt_audience):
            raise ConfigError(
                "user JWTs need PUSHES_USER_JWT_ISSUER and PUSHES_USER_JWT_AUDIENCE "
                "(PUSHES_USER_JWKS_URL or PUSHES_USER_JWT_PUBLIC_KEY is set)"
            )
        if not self.user_jwt_enabled and (self.user_jwt_issuer or self.user_jwt_audience):
            raise ConfigError(
                "PUSHES_USER_JWT_ISSUER/PUSHES_USER_JWT_AUDIENCE are set but no key is: "
                "set PUSHES_USER_JWKS_URL or PUSHES_USER_JWT_PUBLIC_KEY"
            )
        if not set(self.user_jwt_claim) <= _CLAIM_NAME_CHARS:
            raise ConfigError(f"PUSHES_USER_JWT_CLAIM={self.user_jwt_claim!r} is not a claim name")
        if self.require_auth and not (self.api_token or self.user_jwt_enabled):
            raise ConfigError(
                "PUSHES_REQUIRE_AUTH=true but the API would be open: set PUSHES_API_TOKEN, "
                "or PUSHES_USER_JWKS_URL / PUSHES_USER_JWT_PUBLIC_KEY for user JWTs"
            )

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
