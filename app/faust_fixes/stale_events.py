"""Fix: Faust acks the records it skips in a rebalance, and then waits for them.

What Faust does wrong (faust-streaming 0.15.3): after a rebalance its stream
skips the records it fetched under the previous consumer generation (and any
record that arrives while flow control is paused) -- and acks them, so the
next commit can jump past records that no worker processed.  The crash test
lost 20 payments in a row that way.  Refusing that ack exposes a second
problem: ``Consumer.wait_empty`` holds every rebalance until each tracked
record is acked or garbage-collected, and the agent's last batch keeps the
stale record referenced until the next batch, which cannot come while the
rebalance waits; rebalances stalled for minutes.

Replaced: ``Event.ack`` (a stale record is not acked) and the consumer's
set of records in progress (a refused record leaves it: whoever owns its
partition now fetches it again).

Proved by: ``tests/unit/faust_fixes/test_stale_events.py`` and, in
``tests/integration/test_crash.py``, nothing missing and
``test_no_rebalance_waits_for_records_that_will_never_be_acked``.

Delete when: the join stops reading its inputs through Faust streams, or
Faust stops acking the records it skips.
"""

from __future__ import annotations

from typing import cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import Message


class AbandonFix(faust_aiokafka.Consumer):
    """A consumer that can stop waiting for a record that will never be acked."""

    def abandon(self, message: Message) -> None:
        """Stop waiting for ``message``: it will not be acked, and is not in progress."""
        self._unacked_messages.discard(message)


class StaleEvent(faust.Event):
    """Faust's event, which refuses to ack a record fetched before the latest rebalance."""

    def is_stale(self) -> bool:
        """Whether the record was fetched before the latest rebalance (or while paused).

        Faust's stream skips such records; a batch buffer may still hold them.
        """
        return self.message.generation_id != self.app.consumer_generation_id or not (
            self.app.flow_control.is_active()
        )

    def ack(self) -> bool:
        """Ack only records of the current generation, while the flow is on.

        A stale record is dropped instead: whoever owns its partition now
        fetches it again, so a rebalance must not wait for it either.  Acks
        come only after the record's batch is done with it.
        """
        if self.is_stale():
            # The app's transport (app.faust_fixes.transport) always makes this consumer.
            cast(AbandonFix, self.app.consumer).abandon(self.message)
            return False
        return bool(super().ack())
