"""A broker outage on demand: a second, private broker that can be SIGKILLed and restarted.

The shared broker at 127.0.0.1:9092 is never touched.  :class:`SecondBroker`
runs ``scripts/kafka`` with its own home, data and free ports (the jars are
shared through ``KAFKA_LIB_DIR``); :meth:`SecondBroker.kill` takes it down the
way a crash or a network cut would (no clean shutdown, the port just stops
answering), :meth:`SecondBroker.start` brings it back on the same ports and
data.  Use it as a context manager: the broker is stopped and its directory
removed whatever happens.

Run as a script, it measures how many lines a worker logs per minute of outage::

    KAFKA_LIB_DIR=/work/main/.kafka/lib .venv/bin/python -m tests.integration.outage --outage 60
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.integration.harness import KAFKA_SCRIPT, REPO, Namespace, Worker, free_port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port`` now."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class SecondBroker:
    """A single-node KRaft broker of our own, on free loopback ports.

    ``workdir`` holds its home (config, pid, logs, data); it is removed by
    :meth:`close` unless ``keep`` is set.
    """

    def __init__(self, workdir: Path | None = None, keep: bool = False) -> None:
        self._own_dir = workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="pushes-outage-")) if workdir is None else workdir
        )
        self.home = self.workdir / "kafka-home"
        self.port = free_port()
        self.controller_port = free_port()
        self.keep = keep
        self.env = {
            **os.environ,
            "KAFKA_HOME_DIR": str(self.home),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_HEAP_OPTS": "-Xms256m -Xmx256m",
        }
        # The shared jars: without them scripts/kafka would fetch its own copy.
        lib = os.environ.get("KAFKA_LIB_DIR")
        if lib:
            self.env["KAFKA_LIB_DIR"] = lib

    @property
    def bootstrap(self) -> str:
        """The address clients connect to."""
        return f"127.0.0.1:{self.port}"

    def _script(self, command: str, check: bool = True) -> None:
        subprocess.run(
            [str(KAFKA_SCRIPT), command], check=check, cwd=REPO, env=self.env, timeout=300
        )

    def pid(self) -> int | None:
        """The broker's pid from its own pid file, if that process is alive."""
        try:
            pid = int((self.home / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def start(self) -> SecondBroker:
        """Start (or restart after :meth:`kill`) and wait until it answers clients."""
        self._script("start")
        return self

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the broker process and wait until its port is closed."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.pid() is not None or port_open(self.port):
            if time.monotonic() > deadline:
                raise AssertionError(f"broker pid {pid} still alive {timeout}s after SIGKILL")
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the broker (if running) and remove its directory."""
        try:
            if self.pid() is not None:
                self._script("stop", check=False)
        finally:
            if self._own_dir and not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif not self.keep:
                shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> SecondBroker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@contextmanager
def second_broker(workdir: Path | None = None) -> Iterator[SecondBroker]:
    """A started :class:`SecondBroker`, always stopped and removed afterwards."""
    with SecondBroker(workdir) as broker:
        broker.start()
        yield broker


@pytest.fixture
def outage_broker(tmp_path: Path) -> Iterator[SecondBroker]:
    """A started :class:`SecondBroker` for one test (import it into the test module)."""
    with second_broker(tmp_path / "outage-broker") as broker:
        yield broker


@dataclass(frozen=True)
class OutageLog:
    """A worker's log lines around one outage, split by phase."""

    before: list[str]
    outage: list[str]
    recovery: list[str]
    outage_seconds: float
    recovery_seconds: float

    @property
    def outage_lines_per_minute(self) -> float:
        """Lines written per minute while the broker was down."""
        return len(self.outage) * 60.0 / self.outage_seconds


def lines_between(text: str, start: int, end: int | None = None) -> list[str]:
    """The complete lines of ``text`` (bytes offsets ``start`` to ``end``)."""
    data = text.encode("utf-8", errors="replace")[start:end]
    return data.decode("utf-8", errors="replace").splitlines()


def run_outage(
    broker: SecondBroker,
    worker: Worker,
    outage_seconds: float,
    recovery_seconds: float,
) -> OutageLog:
    """Kill ``broker`` under the running ``worker`` for ``outage_seconds``, then restart it.

    The worker's log is cut when the broker is killed and when it answers
    clients again (the outage as the worker sees it, restart included), then
    ``recovery_seconds`` after that.
    """
    mark_kill = worker.log_path.stat().st_size
    broker.kill()
    killed = time.monotonic()
    time.sleep(outage_seconds)
    broker.start()
    mark_up = worker.log_path.stat().st_size
    down = time.monotonic() - killed
    time.sleep(recovery_seconds)
    mark_end = worker.log_path.stat().st_size
    text = worker.output()
    return OutageLog(
        before=lines_between(text, 0, mark_kill),
        outage=lines_between(text, mark_kill, mark_up),
        recovery=lines_between(text, mark_up, mark_end),
        outage_seconds=down,
        recovery_seconds=recovery_seconds,
    )


def main() -> None:
    """Measure one worker's log volume during a broker outage (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=60.0, help="seconds the broker is down")
    parser.add_argument("--recovery", type=float, default=30.0, help="seconds watched after")
    parser.add_argument("--show", type=int, default=15, help="outage lines to print")
    parser.add_argument("--keep", action="store_true", help="keep the worker's log directory")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="pushes-outage-worker-"))
    try:
        with second_broker() as broker:
            worker = Worker(
                Namespace.fresh(), workdir, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap
            ).start()
            try:
                worker.wait_ready()
                time.sleep(5)  # let the start-up settle: its lines are not the outage's
                log = run_outage(broker, worker, args.outage, args.recovery)
            finally:
                worker.stop()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"outage {log.outage_seconds:.0f} s: {len(log.outage)} lines "
        f"({log.outage_lines_per_minute:.0f} per minute); "
        f"{len(log.recovery)} lines in the {log.recovery_seconds:.0f} s after the restart"
    )
    for line in log.outage[: args.show]:
        print("  outage |", line[:200])
    for line in log.recovery[: args.show]:
        print("  after  |", line[:200])
    if args.keep:
        print("worker log:", worker.log_path)


if __name__ == "__main__":
    main()
