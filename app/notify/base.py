"""The contract of a sender: what the join hands over, and what it expects back."""

from __future__ import annotations

from typing import Protocol


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
        """Deliver ``message`` to the device holding ``token``; raise if it failed."""
