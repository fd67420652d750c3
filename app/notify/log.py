"""The default sender: a notification is one log line per device, word for word.

``send notification to mobile app with token: <token> and message: <message>``
(:func:`app.domain.messages.notification_line`), at INFO on the
``pushes.notifications`` logger.
"""

from __future__ import annotations

import logging

from app.domain.messages import notification_line

NOTIFICATION_LOGGER = "pushes.notifications"


class LogNotifier:
    """Emulates delivery with one INFO line per device."""

    def __init__(self, logger: logging.Logger | None = None, *, fields: bool = True) -> None:
        self._log = logger or logging.getLogger(NOTIFICATION_LOGGER)
        # The ids as record attributes only pay off in JSON logs (app.ops.logs);
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
        # The only log line allowed to hold a full token (see app.ops.logs).
        if self._fields:
            extra = {"token": token, "payment_id": payment_id, "user_id": user_id}
            self._log.info("%s", notification_line(token, message), extra=extra)
        else:
            self._log.info("%s", notification_line(token, message))
