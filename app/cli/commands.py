"""Producer commands for demos, smoke tests and load: ``faust -A app <command>``.

::

    faust -A app produce-token --user-id 42 --token bk3RNwTe3H0:CI2k...
    faust -A app produce-payment --user-id 42 --amount 100 --currency RUB
    faust -A app generate tokens --count 1000 --rate 200 --seed 7
    faust -A app generate payments --count 5000 --rate 500 --failed-share 0.2 --unknown-share 0.1

Records go to the public topics exactly as another team's service would send
them (key: the user id), validated by the same parsers as the worker's.  Every
command waits until Kafka acknowledged every record (acks=all) and exits 0 only
if all were; 1 if any failed, 2 if the flags were invalid.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Iterable
from typing import IO, Any, NoReturn

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.cli import AppCommand, argument, option

from app.cli.loadgen import (
    LoadSpec,
    pacing_delay,
    payment_records,
    progress_line,
    summary_line,
    token_records,
)
from app.config import Settings
from app.domain.partitioning import user_key
from app.domain.records import InvalidRecord, parse_payment, parse_token_event
from app.kafka.security import kafka_client_options

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _settings(command: AppCommand) -> Settings:
    # The app carries the settings it was built from (app.application.PushesApp).
    settings: Settings = command.app.settings  # type: ignore[attr-defined]
    return settings


class MissingTopic(Exception):
    """The topic to produce to does not exist (the broker may not auto-create it)."""


PROGRESS_EVERY = 0.1  # seconds between progress updates on a terminal


class Progress:
    """The live progress bar on stderr: redrawn in place on a terminal, else a line a second."""

    def __init__(self, total: int, stream: IO[str], enabled: bool = True) -> None:
        self.total = total
        self.stream = stream
        self.enabled = enabled
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last = 0.0

    def update(self, done: int, errors: int, *, final: bool = False) -> None:
        """Show ``done`` of ``total``, at most every so often unless ``final``."""
        if not self.enabled:
            return
        now = time.monotonic()
        interval = PROGRESS_EVERY if self.tty else 1.0
        if not final and now - self._last < interval:
            return
        self._last = now
        line = progress_line(done, self.total, now - self.started, errors)
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


async def send_records(
    config: Settings,
    topic: str,
    records: Iterable[dict[str, Any]],
    *,
    total: int,
    rate: float = 0.0,
    progress: bool = True,
) -> tuple[int, int, list[Any]]:
    """Produce ``records`` keyed by user id; return ``(acked, errors, metadata)``.

    Returns only after every record is acknowledged or failed.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=config.bootstrap_servers, acks="all", **kafka_client_options(config)
    )
    try:
        await producer.start()
        # Without this a missing topic is a 40-second wait for metadata.
        if topic not in (await producer.client.fetch_all_metadata()).topics():
            raise MissingTopic(
                f"topic {topic!r} does not exist; start a worker once, it creates the topics"
            )
    except BaseException:
        await producer.stop()
        raise
    acked = errors = 0
    metadata: list[Any] = []
    bar = Progress(total, sys.stderr, enabled=progress)

    def settled(future: asyncio.Future[Any]) -> None:
        nonlocal acked, errors
        if future.cancelled() or future.exception() is not None:
            errors += 1
        else:
            acked += 1
            if total == 1:
                metadata.append(future.result())

    try:
        started = time.monotonic()
        for sent, record in enumerate(records):
            delay = pacing_delay(sent, time.monotonic() - started, rate)
            if delay:
                await asyncio.sleep(delay)
            value = json.dumps(record, separators=(",", ":")).encode("utf-8")
            future = await producer.send(topic, key=user_key(str(record["user_id"])), value=value)
            future.add_done_callback(settled)
            bar.update(acked, errors)
        # flush() returns once every batch got its answer from the brokers.
        await producer.flush()
        await asyncio.sleep(0)  # let the last done-callbacks run
        bar.update(acked, errors, final=True)
    finally:
        await producer.stop()
    return acked, errors, metadata


def _run(config: Settings, topic: str, records: list[dict[str, Any]], **kw: Any) -> int:
    try:
        _acked, errors, metadata = asyncio.run(send_records(config, topic, records, **kw))
    except (KafkaError, MissingTopic) as exc:
        _kafka_error(config, exc)
        return EXIT_FAILED
    for meta in metadata:
        print(json.dumps({"topic": meta.topic, "partition": meta.partition, "offset": meta.offset}))
    return EXIT_OK if errors == 0 else EXIT_FAILED


def _kafka_error(config: Settings, exc: Exception) -> None:
    detail = str(exc) if isinstance(exc, MissingTopic) else repr(exc)
    print(f"error: Kafka at {config.bootstrap_servers}: {detail}", file=sys.stderr)


def _usage(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(EXIT_USAGE)


# Faust names each command after its class: produce_token -> produce-token.
class produce_token(AppCommand):
    """Produce one token registration to the tokens topic."""

    options = [  # noqa: RUF012 (faust reads a plain list)
        option("--user-id", required=True, help="the user id"),
        option("--token", required=True, help="the device's push token"),
        option("--device-id", default=None, help='default: "default"'),
        option("--platform", default=None, help="e.g. android, ios"),
    ]

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Validate the flags, produce, print where the record went."""
        flags = self.kwargs
        try:
            event = parse_token_event(
                {
                    "user_id": flags["user_id"],
                    "token": flags["token"],
                    "device_id": flags["device_id"],
                    "platform": flags["platform"],
                }
            )
        except InvalidRecord as exc:
            _usage(str(exc))
        record = event.to_json()
        settings = _settings(self)
        sys.exit(_run(settings, settings.tokens_topic, [record], total=1, progress=False))


class produce_payment(AppCommand):
    """Produce one payment outcome to the payments topic."""

    options = [  # noqa: RUF012
        option("--user-id", required=True, help="the paying user"),
        option("--payment-id", default=None, help="default: a random id"),
        option("--status", default="succeeded", help="succeeded or failed"),
        option("--amount", default="100", help="decimal amount, e.g. 100 or 12.50"),
        option("--currency", default="RUB", help="ISO 4217 code"),
        option("--reason", default=None, help="why a payment failed"),
    ]

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Validate the flags, produce, print where the record went."""
        flags = self.kwargs
        record = {
            "payment_id": flags["payment_id"] or f"p-{uuid.uuid4().hex[:12]}",
            "user_id": flags["user_id"],
            "status": flags["status"],
            "amount": flags["amount"],
            "currency": flags["currency"],
        }
        if flags["reason"]:
            record["reason"] = flags["reason"]
        try:
            parse_payment(record)
        except InvalidRecord as exc:
            _usage(str(exc))
        print(f"payment_id: {record['payment_id']}", file=sys.stderr)
        settings = _settings(self)
        sys.exit(_run(settings, settings.payments_topic, [record], total=1, progress=False))


class generate(AppCommand):
    """Generate COUNT token registrations or payments at a target rate (KIND: tokens|payments)."""

    options = [  # noqa: RUF012
        argument("kind"),
        option("--count", "-n", type=int, default=100, help="how many records"),
        option("--rate", type=float, default=0.0, help="records per second (0: no limit)"),
        option("--seed", type=int, default=0, help="random seed: same seed, same records"),
        option("--users", type=int, default=0, help="known users to spread over (0: COUNT)"),
        option("--failed-share", type=float, default=0.0, help="share of failed payments"),
        option("--unknown-share", type=float, default=0.0, help="share of unknown users"),
        option("--no-progress", is_flag=True, default=False, help="no progress bar"),
    ]

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Generate, produce with a progress bar, print a summary."""
        flags = self.kwargs
        kind = flags["kind"]
        if kind not in ("tokens", "payments"):
            _usage(f"KIND must be tokens or payments, not {kind!r}")
        if flags["rate"] < 0:
            _usage("--rate must be >= 0")
        try:
            spec = LoadSpec(
                count=flags["count"],
                seed=flags["seed"],
                users=flags["users"],
                failed_share=flags["failed_share"],
                unknown_share=flags["unknown_share"],
            )
        except ValueError as exc:
            _usage(str(exc))
        settings = _settings(self)
        if kind == "tokens":
            topic, records = settings.tokens_topic, token_records(spec)
        else:
            topic, records = settings.payments_topic, payment_records(spec)
        started = time.monotonic()
        try:
            acked, errors, _ = asyncio.run(
                send_records(
                    settings,
                    topic,
                    records,
                    total=spec.count,
                    rate=flags["rate"],
                    progress=not flags["no_progress"],
                )
            )
        except (KafkaError, MissingTopic) as exc:
            _kafka_error(settings, exc)
            sys.exit(EXIT_FAILED)
        print(summary_line(topic, acked, errors, time.monotonic() - started))
        sys.exit(EXIT_OK if errors == 0 else EXIT_FAILED)


class fake_fcm(AppCommand):
    """Run a local fake of FCM HTTP v1 and its OAuth token endpoint (tests, demos)."""

    options = [  # noqa: RUF012
        option("--host", default="127.0.0.1", help="address to listen on"),
        option("--port", type=int, default=8099, help="port to listen on"),
        option(
            "--service-account",
            multiple=True,
            help="trust this key file; created with a fresh key pointing here if missing",
        ),
        option("--project-id", default="fake-project", help="project of created key files"),
        option("--script", default=None, help="a JSON file with the fake's script"),
        option("--latency", type=float, default=None, help="seconds before each answer"),
        option("--share-429", type=float, default=None, help="share answered 429"),
        option("--share-503", type=float, default=None, help="share answered 503"),
        option("--share-timeout", type=float, default=None, help="share left hanging"),
        option("--retry-after", default=None, help="Retry-After of 429s and outage 503s"),
        option("--unregistered", multiple=True, help="a token answered UNREGISTERED"),
        option("--outage-after", type=float, default=None, help="seconds until an outage"),
        option("--outage-for", type=float, default=None, help="seconds the outage lasts"),
        option("--seed", type=int, default=None, help="random seed of the shares"),
    ]

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Serve until interrupted."""
        from app.notify import fake_fcm as fake

        flags = self.kwargs
        argv = ["--host", flags["host"], "--port", str(flags["port"])]
        argv += ["--project-id", flags["project_id"]]
        for path in flags["service_account"]:
            argv += ["--service-account", path]
        for token in flags["unregistered"]:
            argv += ["--unregistered", token]
        for name in (
            "script",
            "latency",
            "share_429",
            "share_503",
            "share_timeout",
            "retry_after",
            "outage_after",
            "outage_for",
            "seed",
        ):
            if flags[name] is not None:
                argv += ["--" + name.replace("_", "-"), str(flags[name])]
        sys.exit(fake.main(argv))
