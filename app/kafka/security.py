"""How every Kafka client of the worker authenticates: TLS and SASL from the environment.

One source for all clients: any plain aiokafka client the app makes (the topic
check's admin client, the producer CLI, direct readers) gets
:func:`kafka_client_options`, and Faust's consumer and producer get the same
TLS context and SASL login (``app.application.faust_credentials``).  A client
built without them would connect in plaintext and hang or fail against a
secured cluster.
"""

from __future__ import annotations

import ssl
from typing import Any, cast

from aiokafka.helpers import create_ssl_context

from app.config import Settings


def uses_ssl(settings: Settings) -> bool:
    """Whether the connection to the brokers is TLS."""
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    """Whether the brokers want a SASL login."""
    return settings.kafka_security_protocol.startswith("SASL_")


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for the brokers, or ``None`` when the connection is not TLS.

    Without ``KAFKA_SSL_CAFILE`` the system's trusted CAs verify the brokers;
    a client certificate (``KAFKA_SSL_CERTFILE``, ``KAFKA_SSL_KEYFILE``) is
    presented when one is configured (mutual TLS).
    """
    if not uses_ssl(settings):
        return None
    context = create_ssl_context(
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )
    return cast(ssl.SSLContext, context)


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if uses_sasl(settings):
        options.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=settings.kafka_sasl_password,
        )
    return options
