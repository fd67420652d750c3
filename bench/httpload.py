"""An HTTP load generator for ``POST /tokens``: N connections, each sending back to back.

Written on aiohttp so ``make bench`` needs nothing outside the project's own
dependencies.  It bounds itself by time, stops on its own, and only ever
targets the URL it is given (the local worker).  Run as
``python -m bench.httpload --url http://127.0.0.1:PORT --seconds 20``;
prints one JSON object.  It shares the machine's cores with the worker: on
a 2-core host the client is part of what limits the measured rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.stats import percentile
from bench.workload import fake_fcm_token


async def _connection(
    session: aiohttp.ClientSession,
    url: str,
    deadline: float,
    users: int,
    rng: random.Random,
    latencies: list[float],
    statuses: Counter[int],
) -> None:
    while time.monotonic() < deadline:
        body = {
            "user_id": rng.randrange(1, users + 1),
            "device_id": f"http-{rng.randrange(3)}",
            "token": fake_fcm_token(rng),
            "platform": "android",
        }
        started = time.perf_counter()
        try:
            async with session.post(url, json=body) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError):
            status = 0
        latencies.append(time.perf_counter() - started)
        statuses[status] += 1


async def run(url: str, seconds: float, connections: int, users: int, seed: int) -> dict[str, Any]:
    """Load ``url`` for ``seconds``; return counts, rate and latency percentiles."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(
                _connection(
                    session,
                    url,
                    deadline,
                    users,
                    random.Random(seed * 1000 + i),
                    latencies,
                    statuses,
                )
                for i in range(connections)
            )
        )
        elapsed = time.monotonic() - started
    ms = sorted(latency * 1000 for latency in latencies)
    accepted = statuses.get(202, 0)
    return {
        "requests": len(ms),
        "accepted": accepted,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": elapsed,
        "connections": connections,
        "requests_per_second": len(ms) / elapsed if elapsed else 0.0,
        "accepted_per_second": accepted / elapsed if elapsed else 0.0,
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1] if ms else None,
    }


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.httpload", description=__doc__)
    parser.add_argument("--url", required=True, help="the worker's base URL")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=1000, help="user ids 1..USERS")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.", "http://localhost")):
        parser.error("only a worker on this machine (http://127.x or localhost) is a target")
    result = asyncio.run(
        run(args.url.rstrip("/") + "/tokens", args.seconds, args.connections, args.users, args.seed)
    )
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
