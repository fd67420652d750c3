"""Every topic the worker reads or writes: its name, and its Faust object.

``push-tokens`` and ``payments`` are the public contracts that other services
produce to.  The ``*-canonical`` topics are ours: they hold the same records
re-keyed and placed on their user's canonical partition (see
:mod:`app.domain.partitioning`), with the table's partition count.  Each
table has a changelog, named the way Faust names it.  The names are plain
data (:class:`TopicNames`), so the startup check (:mod:`app.kafka.admin`)
uses them before any Faust object exists; :class:`Topics` declares the Faust
topic objects on the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.config import Settings

if TYPE_CHECKING:
    from faust.types import TopicT

#: The tables, by name; each has a changelog topic (:meth:`TopicNames.changelog`).
TOKENS_TABLE = "tokens"
SENT_TABLE = "sent"
PENDING_TABLE = "pending"
RETRIES_TABLE = "retries"
TABLES = (TOKENS_TABLE, SENT_TABLE, PENDING_TABLE, RETRIES_TABLE)


@dataclass(frozen=True)
class TopicNames:
    """The name of every topic, from the settings."""

    app_id: str
    tokens: str
    payments: str
    dead_letters: str
    undeliverable: str

    @classmethod
    def of(cls, settings: Settings) -> TopicNames:
        """The names a worker with ``settings`` uses."""
        return cls(
            app_id=settings.app_id,
            tokens=settings.tokens_topic,
            payments=settings.payments_topic,
            dead_letters=settings.dead_letter_topic,
            undeliverable=settings.undeliverable_topic,
        )

    @property
    def tokens_canonical(self) -> str:
        """Token events placed on their user's canonical partition."""
        return f"{self.app_id}-tokens-canonical"

    @property
    def payments_canonical(self) -> str:
        """Payments placed on their user's canonical partition."""
        return f"{self.app_id}-payments-canonical"

    @property
    def canonical(self) -> frozenset[str]:
        """Both canonical topics: their records are always on their user's partition."""
        return frozenset({self.tokens_canonical, self.payments_canonical})

    def changelog(self, table: str) -> str:
        """Faust's name for a table's changelog topic."""
        return f"{self.app_id}-{table}-changelog"


class Topics:
    """The Faust topic objects, declared on ``app``."""

    def __init__(self, app: Any, names: TopicNames, partitions: int) -> None:
        # internal=True lets the worker create these topics (with the configured
        # partition count) instead of relying on broker auto-creation.
        def topic(*topics: str) -> TopicT:
            found: TopicT = app.topic(*topics, internal=True, partitions=partitions)
            return found

        self.names = names
        self.tokens = topic(names.tokens)
        self.payments = topic(names.payments)
        self.tokens_canonical = topic(names.tokens_canonical)
        self.payments_canonical = topic(names.payments_canonical)
        # One agent reads a public topic and its canonical copy together: the record
        # either is already where its user lives, or is forwarded and comes back here.
        self.token_sources = topic(names.tokens, names.tokens_canonical)
        self.payment_sources = topic(names.payments, names.payments_canonical)
        self.dead_letters: TopicT = app.topic(names.dead_letters, internal=True)
