"""The baseline: the join as a minimal consumer written directly on aiokafka.

Per payment it does the worker's own per-record work with the worker's own
functions: decode the JSON and validate it
(``app.domain.records.parse_payment``, which normalises the user id), look
the user up in a local RocksDB (rocksdict, raw bytes, a JSON device map per
user, as the worker's table), render the message and the same line
(``app.domain.messages``) and write it through ``logging`` to a file with
Faust's log format.
Re-sent payments are skipped with an in-memory set, so the sink gets the
same lines as the worker's.  No Faust: no hop to a canonical partition (one
process holds every user), no changelogs, no durable deduplication, no
offset commits.  Those are what the ratio ours/baseline prices.

The tokens are loaded first from the tokens topic (timed separately, for
comparison with the worker's ingest).  Run as
``python -m bench.baseline --tokens-topic T --payments-topic P --partitions N
--db DIR --sink FILE``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from rocksdict import Options, Rdict

from app.domain.messages import notification_line, render_message
from app.domain.records import InvalidRecord, decode_json, parse_payment, parse_token_event
from bench.kafka import read_to_end
from bench.sink import sink_logger

MAX_RECORD_BYTES = 64 * 1024


def apply_registration(db: Rdict, value: bytes | None) -> None:
    """Store one registration: the user's device map, read, changed and written back."""
    try:
        event = parse_token_event(decode_json(value, MAX_RECORD_BYTES))
    except InvalidRecord:
        return
    key = event.user_id.encode()
    raw = db.get(key)
    devices: dict[str, Any] = json.loads(raw) if raw is not None else {}
    if event.token is None:
        devices.pop(event.device_id, None)
    else:
        devices[event.device_id] = {
            "token": event.token,
            "platform": event.platform,
            "updated_at": event.updated_at,
        }
    if devices:
        db[key] = json.dumps(devices).encode()
    elif raw is not None:
        del db[key]


def join_payment(
    db: Rdict, seen: set[tuple[str, str]], log: logging.Logger, value: bytes | None
) -> None:
    """Notify every device of the payment's user, as the worker does."""
    try:
        payment = parse_payment(decode_json(value, MAX_RECORD_BYTES))
    except InvalidRecord:
        return
    outcome = (payment.payment_id, payment.status)
    if outcome in seen:
        return
    seen.add(outcome)
    raw = db.get(payment.user_id.encode())
    if raw is None:
        log.info(
            "no push token for user %s: payment %s (%s) not notified",
            payment.user_id,
            payment.payment_id,
            payment.status,
        )
        return
    message = render_message(payment)
    for _device, info in sorted(json.loads(raw).items()):
        log.info("%s", notification_line(info["token"], message))


async def consume(
    bootstrap: str, topic: str, partitions: int, handle: Callable[[bytes | None], None]
) -> tuple[int, float]:
    """Feed every record of ``topic`` to ``handle``; return ``(records, seconds)``."""
    count = 0

    def each(records: list[Any]) -> None:
        nonlocal count
        for record in records:
            handle(record.value)
        count += len(records)

    seconds = await read_to_end(bootstrap, topic, partitions, each)
    return count, seconds


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Load the tokens, then join the payments; the timings of both."""
    if "faust" in sys.modules:
        raise RuntimeError("the baseline must run without Faust, but it was imported")
    db = Rdict(args.db, Options(raw_mode=True))
    try:
        tokens, tokens_s = await consume(
            args.bootstrap, args.tokens_topic, args.partitions, lambda v: apply_registration(db, v)
        )
        log = sink_logger(args.sink, "pushes.baseline")
        seen: set[tuple[str, str]] = set()
        started = time.time()
        payments, payments_s = await consume(
            args.bootstrap,
            args.payments_topic,
            args.partitions,
            lambda v: join_payment(db, seen, log, v),
        )
    finally:
        db.close()
    return {
        "tokens": tokens,
        "tokens_seconds": tokens_s,
        "payments": payments,
        "payments_seconds": payments_s,
        "payments_started_at": started,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--tokens-topic", required=True)
    parser.add_argument("--payments-topic", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--db", required=True, help="directory of the local RocksDB")
    parser.add_argument("--sink", required=True, help="the log file the lines go to")
    result = asyncio.run(run(parser.parse_args(argv)))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
