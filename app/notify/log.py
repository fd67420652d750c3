"""The default sender: a notification is one log line per device, word for word.

``send notification to mobile app with token: <token> and message: <message>``
(:func:`app.domain.messages.notification_line`), at INFO on the
``pushes.notifications`` logger.  A batch's lines are written together
(:func:`app.ops.logs.log_many`): the same lines, one write per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from app.domain.messages import notification_line
from app.notify.base import Delivery, Outcome
from app.ops.logs import log_many

NOTIFICATION_LOGGER = "pushes.notifications"


class LogSender:
    """Emulates delivery with one INFO line per device; every delivery succeeds."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None, *, fields: bool = True) -> None:
        self._log = logger or logging.getLogger(NOTIFICATION_LOGGER)
        # The ids as record attributes only pay off in JSON logs (app.ops.logs);
        # building them costs a few percent of the join otherwise.
        self._fields = fields

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    async def send(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        """Log one line per delivery, with the ids as fields if asked to."""
        # The only log lines allowed to hold a full token (see app.ops.logs).
        lines: list[tuple[str, dict[str, Any]]] = [
            (
                notification_line(d.token, d.body),
                {"token": d.token, "payment_id": d.payment_id, "user_id": d.user_id}
                if self._fields
                else {},
            )
            for d in deliveries
        ]
        log_many(self._log, logging.INFO, lines)
        delivered = Outcome.delivered()
        return [delivered] * len(deliveries)
