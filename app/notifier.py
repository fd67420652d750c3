"""The seam where a notification leaves the service.

Today a notification is one log line per device, word for word as the product
asks.  A real sender (Firebase Cloud Messaging, APNs) replaces
:class:`LogNotifier` by another :class:`Notifier`; nothing else changes.
"""

from __future__ import annotations

import logging
from typing import Protocol

NOTIFICATION_LOGGER = "pushes.notifications"


def notification_line(token: str, message: str) -> str:
    """The exact text of one emulated push."""
    return f"send notification to mobile app with token: {token} and message: {message}"


class Notifier(Protocol):
    """Delivers one message to one device."""

    async def send(
        self,
        token: str,
        message: str,
        *,
        payment_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Deliver ``message`` to the device holding ``token``."""


class LogNotifier:
    """Emulates delivery with one INFO line per device."""

    def __init__(self, logger: logging.Logger | None = None, *, fields: bool = True) -> None:
        self._log = logger or logging.getLogger(NOTIFICATION_LOGGER)
        # The ids as record attributes only pay off in JSON logs (app.logs);
        # building them costs a few percent of the join otherwise.
        self._fields = fields

    async def send(
        self,
        token: str,
        message: str,
        *,
        payment_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """Log the notification line, with the ids as fields if asked to."""
        # The only log line allowed to hold a full token (see app.logs).
        if self._fields:
            extra = {"token": token, "payment_id": payment_id, "user_id": user_id}
            self._log.info("%s", notification_line(token, message), extra=extra)
        else:
            self._log.info("%s", notification_line(token, message))
