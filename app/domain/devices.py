"""A user's devices: what a registration or a removal does to them.

The tokens table (:mod:`tables.tokens`) holds, per user, a map
``device_id -> {"token", "platform", "updated_at"}``; these functions compute
the next map from the previous one and an event, without touching the table.
"""

from __future__ import annotations

from typing import Any

from app.domain.records import TokenEvent

Devices = dict[str, dict[str, Any]]


def apply_token_event(
    devices: Devices | None, event: TokenEvent, max_devices: int
) -> tuple[Devices, list[str]]:
    """The user's devices after ``event``, and the device ids evicted to fit.

    A registration replaces the device's token; ``token=None`` removes the
    device, and a removal with ``failed_token`` only while the device still
    holds that token (it may have registered a new one since).  Past
    ``max_devices`` the devices with the oldest ``updated_at`` go first.  The
    input mapping is never changed.
    """
    result = dict(devices or {})
    if event.token is None:
        current = result.get(event.device_id)
        if event.failed_token is None or (current and current["token"] == event.failed_token):
            result.pop(event.device_id, None)
        return result, []
    result[event.device_id] = {
        "token": event.token,
        "platform": event.platform,
        "updated_at": event.updated_at,
    }
    evicted: list[str] = []
    if len(result) > max_devices:
        by_age = sorted(result, key=lambda d: (result[d]["updated_at"], d))
        evicted = [d for d in by_age if d != event.device_id][: len(result) - max_devices]
        for device_id in evicted:
            del result[device_id]
    return result, evicted


def tokens_of(devices: Devices | None) -> list[tuple[str, str]]:
    """``(device_id, token)`` pairs in a stable order."""
    return sorted((d, info["token"]) for d, info in (devices or {}).items())


def mask_token(token: str) -> str:
    """First 6 and last 4 characters: enough to recognise a token, not to use it."""
    if len(token) <= 10:
        return "*" * len(token)
    return f"{token[:6]}...{token[-4:]}"
