"""The push-token table: per user, the devices that can receive notifications.

Key: the normalised user id as raw UTF-8 (:func:`app.domain.partitioning.user_key`),
the same bytes as the topic key, so ``table_route``, the changelog and the
canonical partitioning all agree on where a user lives.  Value: a JSON map
``device_id -> {"token", "platform", "updated_at"}``
(:data:`app.domain.devices.Devices`).  A user with no device left is deleted
from the table.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.topics import TOKENS_TABLE
from tables.store import declare_table


def declare(app: Any, settings: Settings) -> Any:
    """The tokens table of ``app``."""
    return declare_table(
        app,
        TOKENS_TABLE,
        settings,
        "Push tokens by user id: device_id -> {token, platform, updated_at}.",
    )
