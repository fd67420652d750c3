"""The worker under test: a real ``faust -A app worker`` subprocess, its HTTP and its memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any ``PUSHES_*`` setting, plus ``extra``.

    A developer's own ``PUSHES_API_TOKEN`` (say) must not change what the bench measures.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHES_")}
    return {**env, "TZ": "UTC", **extra}


def http_get(url: str, timeout: float = 10.0) -> tuple[int, Any]:
    """``(status, decoded JSON body)``; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


@dataclass(frozen=True)
class Memory:
    """A process's resident set now and at its peak, in MiB."""

    rss_mb: float
    peak_mb: float


def read_memory(pid: int) -> Memory | None:
    """VmRSS and VmHWM of ``pid`` from /proc, or ``None`` once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        return Memory(_kib(fields["VmRSS"]) / 1024, _kib(fields["VmHWM"]) / 1024)
    except KeyError:  # a zombie has no memory lines
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds ``pid`` has used so far (all its threads), or ``None``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: count fields after its ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _kib(value: str) -> int:
    return int(value.split()[0])


class MemorySampler(threading.Thread):
    """Samples a process's RSS every ``interval`` seconds: ``(epoch s, MiB)``."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        """Sample until stopped or the process is gone."""
        while not self._halt.is_set():
            memory = read_memory(self.pid)
            if memory is None:
                return
            self.samples.append((time.time(), memory.rss_mb))
            self._halt.wait(self.interval)

    def stop(self) -> list[tuple[float, float]]:
        """Stop sampling; return the samples."""
        self._halt.set()
        self.join()
        return self.samples


class WorkerError(RuntimeError):
    """The worker exited or did not get somewhere in time; the message says which."""


class WorkerProcess:
    """One worker with its own data dir, log sink file and web port.

    The notifications go to ``sink`` through Faust's ``--logfile`` (a plain
    ``logging.FileHandler``, as a production deployment writing to a file);
    stdout/stderr (Faust's banner, crashes) go to ``console``.
    """

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "worker") -> None:
        self.env = env
        self.datadir = workdir / f"{name}-data"
        self.sink = workdir / f"{name}.log"
        self.console = workdir / f"{name}.console"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    @property
    def url(self) -> str:
        """Base URL of the worker's web server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The running worker's process id."""
        if self.proc is None:
            raise WorkerError("the worker is not running")
        return self.proc.pid

    def start(self) -> float:
        """Spawn the worker; return the epoch time of the spawn."""
        command = [
            sys.executable, "-m", "faust", "--datadir", str(self.datadir),
            "-A", "app", "worker", "-l", "info",
            "--web-port", str(self.port), "--logfile", str(self.sink),
        ]  # fmt: skip
        with self.console.open("ab") as console:
            self.spawned_at = time.time()
            self.proc = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=console, stderr=subprocess.STDOUT
            )
        return self.spawned_at

    def wait_ready(self, timeout: float) -> float:
        """Poll ``/readyz`` every 20 ms; return the epoch time it first said 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            status, _ = http_get(self.url + "/readyz", timeout=2)
            if status == 200:
                return time.time()
            time.sleep(0.02)
        raise WorkerError(f"/readyz was not 200 within {timeout:.0f}s\n{self.tail()}")

    def check_alive(self) -> None:
        """Raise if the worker has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise WorkerError(f"the worker exited with {self.proc.returncode}\n{self.tail()}")

    def stats(self) -> dict[str, Any]:
        """``GET /stats``: users and devices of the tokens table."""
        status, body = http_get(self.url + "/stats", timeout=60)
        if status != 200 or not isinstance(body, dict):
            raise WorkerError(f"/stats answered {status}")
        return body

    def memory(self) -> Memory | None:
        """The worker's RSS now and its peak so far."""
        return None if self.proc is None else read_memory(self.proc.pid)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM (a clean shutdown keeps the local state), SIGKILL after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        """The last lines of the sink and the console, for error messages."""
        parts = []
        for path in (self.sink, self.console):
            if path.exists():
                with path.open("rb") as f:
                    f.seek(max(0, path.stat().st_size - 20_000))
                    text = f.read().decode("utf-8", "replace").splitlines()[-lines:]
                parts.append(f"--- {path.name}:\n" + "\n".join(text))
        return "\n".join(parts)
