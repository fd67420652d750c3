"""The notifications a batch decided to send, until its sender has answered for each.

The handlers do not send: they plan deliveries in their task's outbox
(:meth:`Outbox.plan`).  At the end of the batch the engine hands every
task's deliveries to the sender at once and gives each task its outcomes
back (:func:`app.streams.payments.settle`), which records the devices
reached in the sent table.  Within the batch the outbox is what keeps a
payment seen twice from being planned twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.notify.base import Delivery


@dataclass(slots=True)
class Planned:
    """A delivery of one payment outcome (its sent-table ``key``, event time ``at_ms``)."""

    key: bytes
    at_ms: int
    delivery: Delivery


class Outbox:
    """One task's planned deliveries of the batch in progress."""

    def __init__(self) -> None:
        self._planned: list[Planned] = []
        self._devices: dict[bytes, set[str]] = {}

    def plan(self, key: bytes, at_ms: int, delivery: Delivery) -> None:
        """Send ``delivery`` at the end of the batch."""
        self._planned.append(Planned(key, at_ms, delivery))
        devices = self._devices.get(key)
        if devices is None:
            self._devices[key] = {delivery.device_id}
        else:
            devices.add(delivery.device_id)

    def has(self, key: bytes) -> bool:
        """Whether this batch already planned a delivery of payment outcome ``key``."""
        return key in self._devices

    def devices(self, key: bytes) -> frozenset[str]:
        """The devices this batch already planned for ``key``."""
        return frozenset(self._devices.get(key, ()))

    def take(self) -> list[Planned]:
        """Everything planned, in order; the outbox is empty afterwards."""
        planned, self._planned = self._planned, []
        self._devices = {}
        return planned

    def __len__(self) -> int:
        return len(self._planned)
