"""The topics the worker reads and writes.

``push-tokens`` and ``payments`` are the public contracts that other services
produce to.  The ``*-canonical`` topics are ours: they hold the same records
re-keyed and placed on their user's canonical partition (see
:mod:`app.partitioning`), with the table's partition count.
"""

from __future__ import annotations

from app.application import app
from app.config import settings

# internal=True lets the worker create these topics (with the configured
# partition count) instead of relying on broker auto-creation.
tokens_topic = app.topic(settings.tokens_topic, internal=True, partitions=settings.partitions)
payments_topic = app.topic(settings.payments_topic, internal=True, partitions=settings.partitions)
tokens_canonical_topic = app.topic(
    f"{settings.app_id}-tokens-canonical", internal=True, partitions=settings.partitions
)
payments_canonical_topic = app.topic(
    f"{settings.app_id}-payments-canonical", internal=True, partitions=settings.partitions
)

# One agent reads a public topic and its canonical copy together: the record
# either is already where its user lives, or is forwarded and comes back here.
token_sources = app.topic(
    tokens_topic.get_topic_name(),
    tokens_canonical_topic.get_topic_name(),
    internal=True,
    partitions=settings.partitions,
)
payment_sources = app.topic(
    payments_topic.get_topic_name(),
    payments_canonical_topic.get_topic_name(),
    internal=True,
    partitions=settings.partitions,
)
dead_letter_topic = app.topic(settings.dead_letter_topic, internal=True)

CANONICAL_TOPICS = frozenset(
    {tokens_canonical_topic.get_topic_name(), payments_canonical_topic.get_topic_name()}
)
