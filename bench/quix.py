"""The Quix Streams contestant: the worker's join as an idiomatic Quix Streams app.

Run in its own virtualenv (``.venv-quix``: quixstreams pins an older
confluent-kafka than ours) as ``python -m bench.quix --tokens-topic T
--payments-topic P --partitions N --group G --state-dir DIR --sink FILE
--result FILE``; it processes the backlog in both topics, then stops by itself
and writes a JSON summary to ``--result``.

The dataflow, in Quix's own terms::

    tokens (keyed by user id) -> parse -> fold per user (stateful: device -> token) ─┐
    payments -> parse -> group_by(user id) -> first outcome (stateful) -> join_asof ─> lines

``join_asof`` looks up, per payment, the user's folded devices as of the
payment's event time (the right side is a timestamped store).  Event time is
``updated_at`` / ``occurred_at`` through the topics' timestamp extractors;
Quix orders the records of co-partitioned topics by their Kafka timestamps,
which the bench's backlog sets to the same times, so tokens older than a
payment are applied before it.  What ``join_asof`` cannot do is wait for a
token registered *after* a payment (the worker's late-token grace): the
backlog workload has none, and a payment whose user has no device gets the
"not notified" line at once.

Parsing, rendering and the line are the worker's own functions
(:mod:`app.domain`, which loads no Faust); the lines go through ``logging`` to a file in Faust's
format (:func:`bench.sink.sink_logger`), so the bench reads this sink like the
worker's.  Faust is not imported.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol

from app.domain.messages import notification_line, render_message
from app.domain.records import InvalidRecord, TokenEvent, parse_payment, parse_token_event
from bench.sink import sink_logger

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_MS = timedelta(milliseconds=1)
DEVICES = "devices"
REPARTITION_PREFIX = "repartition__"


class StateLike(Protocol):
    """The part of Quix's per-key ``State`` these steps use."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key`` for the current message key."""

    def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` for the current message key."""


# --- the steps (pure but for the state they are handed) ----------------------


def event_time_ms(value: Any, field_name: str, kafka_ms: int) -> int:
    """Event time of a record: its ISO ``field_name`` if valid, else its Kafka timestamp.

    Integer arithmetic, so a millisecond in the text is that millisecond.
    """
    text = value.get(field_name) if isinstance(value, dict) else None
    if isinstance(text, str):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return kafka_ms
        if moment.tzinfo is not None:
            return (moment - EPOCH) // ONE_MS
    return kafka_ms


def parse_token(value: Any) -> TokenEvent | None:
    """A registration or removal, or ``None`` for a record the worker would dead-letter."""
    try:
        return parse_token_event(value)
    except InvalidRecord:
        return None


def fold_devices(devices: dict[str, str] | None, event: TokenEvent) -> dict[str, str]:
    """The user's ``device_id -> token`` after ``event`` (a new mapping)."""
    result = dict(devices or {})
    if event.token is None:
        result.pop(event.device_id, None)
    else:
        result[event.device_id] = event.token
    return result


def fold_step(event: TokenEvent, state: StateLike) -> dict[str, str]:
    """Stateful apply on the tokens: fold ``event`` into the user's devices in state."""
    devices = fold_devices(state.get(DEVICES), event)
    state.set(DEVICES, devices)
    return devices


def parse_payment_json(value: Any) -> dict[str, Any] | None:
    """A valid payment as JSON-ready data (user id normalised), or ``None``."""
    try:
        return parse_payment(value).to_json()
    except InvalidRecord:
        return None


def first_outcome(payment: dict[str, Any], state: StateLike) -> bool:
    """Stateful filter: pass a payment outcome (id, status) the first time only."""
    key = f"sent:{payment['payment_id']}:{payment['status']}"
    if state.get(key):
        return False
    state.set(key, True)
    return True


def merge(payment: dict[str, Any], devices: dict[str, str] | None) -> dict[str, Any]:
    """``join_asof``'s ``on_merge``: the payment and its devices (inputs untouched)."""
    return {"payment": payment, "devices": devices or {}}


def lines_for(joined: dict[str, Any]) -> list[str]:
    """The notification lines of a joined payment, one per device, by device id."""
    devices: dict[str, str] = joined["devices"]
    if not devices:
        return []
    message = render_message(parse_payment(joined["payment"]))
    return [notification_line(token, message) for _device, token in sorted(devices.items())]


def send(log: logging.Logger, joined: dict[str, Any]) -> None:
    """Write the lines (or the worker's "not notified" line) to the sink."""
    lines = lines_for(joined)
    if not lines:
        payment = joined["payment"]
        log.info(
            "no push token for user %s: payment %s (%s) not notified",
            payment["user_id"],
            payment["payment_id"],
            payment["status"],
        )
    for line in lines:
        log.info("%s", line)


@dataclass
class Progress:
    """When the backlog is processed: every input offset, and every re-keyed payment back.

    ``ends``: the inputs' end offsets at the start, per ``(topic, partition)``.
    """

    ends: dict[tuple[str, int], int]
    forwarded: int = 0
    repartitioned: int = 0
    tokens: int = 0
    payments: int = 0
    started_at: float | None = None
    started_cpu: float | None = None
    done_at: float | None = None
    done_cpu: float | None = None
    _left: set[tuple[str, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._left = {tp for tp, end in self.ends.items() if end > 0}

    def processed(self, topic: str, partition: int, offset: int) -> None:
        """``on_message_processed``: one input message is through the whole dataflow."""
        if self.started_at is None:
            self.started_at = time.time()
            self.started_cpu = time.process_time()
        if topic.startswith(REPARTITION_PREFIX):
            self.repartitioned += 1
            return
        tp = (topic, partition)
        if tp in self._left and offset + 1 >= self.ends[tp]:
            self._left.discard(tp)

    def finish(self) -> bool:
        """Whether the backlog is done; the first time it is, note when (and the CPU)."""
        if self.done_at is None and self.done:
            self.done_at = time.time()
            self.done_cpu = time.process_time()
        return self.done_at is not None

    @property
    def done(self) -> bool:
        """Every input read to its end offset and every forwarded payment processed."""
        return not self._left and self.repartitioned >= self.forwarded


# --- the app -------------------------------------------------------------------


def end_offsets(bootstrap: str, topics: list[str], partitions: int) -> dict[tuple[str, int], int]:
    """High watermarks of the inputs now (the backlog is complete before the start)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pushes-bench-quix-ends"})
    try:
        return {
            (topic, p): int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for topic in topics
            for p in range(partitions)
        }
    finally:
        consumer.close()


def build(args: argparse.Namespace, progress: Progress, log: logging.Logger) -> Any:
    """The Quix ``Application`` with the join's dataflow."""
    from quixstreams import Application

    def on_processed(topic: str, partition: int, offset: int) -> None:
        progress.processed(topic, partition, offset)
        if progress.finish():
            app.stop()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        loglevel="WARNING",
        on_message_processed=on_processed,
    )
    tokens_topic = app.topic(
        args.tokens_topic,
        value_deserializer="json",
        timestamp_extractor=lambda v, _h, ts, _t: event_time_ms(v, "updated_at", ts),
    )
    payments_topic = app.topic(
        args.payments_topic,
        value_deserializer="json",
        timestamp_extractor=lambda v, _h, ts, _t: event_time_ms(v, "occurred_at", ts),
    )

    def count_token(value: Any) -> Any:
        progress.tokens += 1
        return parse_token(value)

    devices = (
        app.dataframe(tokens_topic)
        .apply(count_token)
        .filter(lambda event: event is not None)
        .apply(fold_step, stateful=True)
    )

    def count_payment(value: Any) -> Any:
        progress.payments += 1
        payment = parse_payment_json(value)
        progress.forwarded += payment is not None
        return payment

    payments = (
        app.dataframe(payments_topic)
        .apply(count_payment)
        .filter(lambda payment: payment is not None)
        # Raw bytes keys, as the tokens topic's: the same partition and the same state prefix.
        .group_by(
            lambda payment: payment["user_id"].encode(),
            name="user",
            key_serializer="bytes",
            key_deserializer="bytes",
        )
        .filter(first_outcome, stateful=True)
    )
    joined = payments.join_asof(devices, how="left", on_merge=merge, grace_ms=args.grace_ms)
    joined.update(lambda value: send(log, value))
    return app


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Process the backlog; the counts, times and CPU of the run."""
    import confluent_kafka
    import quixstreams

    ends = end_offsets(args.bootstrap, [args.tokens_topic, args.payments_topic], args.partitions)
    progress = Progress(ends)
    log = sink_logger(args.sink, "pushes.quix")
    app = build(args, progress, log)
    launched = time.time()
    app.run()
    stopped_at = time.time()
    if progress.done_at is None:
        raise RuntimeError(f"stopped before the end of the backlog: {progress}")
    if "faust" in sys.modules:
        raise RuntimeError("the Quix contestant must run without Faust, but it was imported")
    return {
        "tokens": progress.tokens,
        "payments": progress.payments,
        "repartitioned": progress.repartitioned,
        "launched_at": launched,
        "started_at": progress.started_at,
        "started_cpu_seconds": progress.started_cpu,
        "done_at": progress.done_at,
        "done_cpu_seconds": progress.done_cpu,
        "stopped_at": stopped_at,
        "versions": {
            "quixstreams": quixstreams.__version__,
            "confluent-kafka": confluent_kafka.__version__,
            "librdkafka": confluent_kafka.libversion()[0],
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.quix", description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--tokens-topic", required=True)
    parser.add_argument("--payments-topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--group", required=True, help="consumer group (prefix of Quix's topics)")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--sink", required=True, help="the log file the lines go to")
    parser.add_argument("--result", required=True, type=Path, help="where the JSON summary goes")
    parser.add_argument(
        "--grace-ms",
        type=int,
        default=600_000,
        help="how long join_asof keeps older device maps, in event time",
    )
    args = parser.parse_args(argv)
    args.result.write_text(json.dumps(run(args)) + "\n")


if __name__ == "__main__":
    main()
