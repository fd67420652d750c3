"""Payments waiting for a late token, per user.

Key: the user key (as in the tokens table).  Value: a JSON list of
``{"payment": <payment JSON>, "event_time": <ms>}`` in arrival order
(:data:`app.domain.pending.Pending`), at most ``PUSHES_MAX_PENDING_PER_USER`` long.
"""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.topics import PENDING_TABLE
from tables.store import declare_table


def declare(app: Any, settings: Settings) -> Any:
    """The pending table of ``app``."""
    return declare_table(
        app,
        PENDING_TABLE,
        settings,
        "Payments of users without a token yet, kept for the late-token grace period.",
    )
