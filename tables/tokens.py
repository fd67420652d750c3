"""The push-token table: per user, the devices that can receive notifications.

Key: the normalised user id as raw UTF-8 (:func:`app.partitioning.user_key`),
the same bytes as the topic key, so ``table_route``, the changelog and the
canonical partitioning all agree on where a user lives.  Value: a JSON map
``device_id -> {"token", "platform", "updated_at"}``.  A user with no device
left is deleted from the table.
"""

from __future__ import annotations

import logging
from typing import Any

from app.application import app
from app.config import settings
from app.models import TokenEvent
from tables.storage import rocksdb_options

log = logging.getLogger(__name__)

Devices = dict[str, dict[str, Any]]

tokens_table = app.Table(
    "tokens",
    partitions=settings.partitions,
    options=rocksdb_options(settings),
    # bytes keys use the raw codec: the same bytes as the topic key.  A str key
    # type would be JSON-encoded ('"42"') and hash to another partition.
    key_type=bytes,
    help="Push tokens by user id: device_id -> {token, platform, updated_at}.",
)


def apply_token_event(
    devices: Devices | None, event: TokenEvent, max_devices: int
) -> tuple[Devices, list[str]]:
    """The user's devices after ``event``, and the device ids evicted to fit.

    A registration replaces the device's token; ``token=None`` removes the
    device.  Past ``max_devices`` the devices with the oldest ``updated_at``
    go first.  The input mapping is never changed.
    """
    result = dict(devices or {})
    if event.token is None:
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
