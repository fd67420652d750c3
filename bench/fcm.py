"""The project's fake FCM (``python -m app.notify.fake_fcm``) as the bench's own process.

It runs apart from the worker, as FCM would, on a free port; it writes the
service-account file it trusts, whose ``token_uri`` is its own ``/token``.
Its answers follow the script given on its command line (latency, shares of
429 and 503, ``Retry-After``, seed); the bench reads its records through the
control endpoints (``/_fake/stats``, ``/_fake/accepted``, ``/_fake/attempts``)
and clears them between phases (``/_fake/reset``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.worker import REPO, free_port


@dataclass(frozen=True)
class FakeScript:
    """What the bench asks of the fake: the issue's "50 ms and 2% transient errors"."""

    latency_s: float = 0.05
    share_429: float = 0.01
    share_503: float = 0.01
    #: Sent with each 429; the worker clamps it to its 10 s minimum.
    retry_after_s: int = 1
    seed: int = 1

    def flags(self) -> list[str]:
        """The fake's command-line flags for this script."""
        return [
            "--latency", str(self.latency_s),
            "--share-429", str(self.share_429),
            "--share-503", str(self.share_503),
            "--retry-after", str(self.retry_after_s),
            "--seed", str(self.seed),
        ]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """For the report."""
        return {
            "latency_s": self.latency_s,
            "share_429": self.share_429,
            "share_503": self.share_503,
            "retry_after_s": self.retry_after_s,
            "seed": self.seed,
        }


class FakeFcmError(RuntimeError):
    """The fake did not start or stopped answering."""


class FakeFcmProcess:
    """One fake FCM subprocess with its service-account file and log."""

    def __init__(self, workdir: Path, script: FakeScript, name: str = "fake-fcm") -> None:
        self.port = free_port()
        self.key_file = workdir / f"{name}-service-account.json"
        self.log_path = workdir / f"{name}.log"
        self.script = script
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The base URL the worker sends to (``PUSHES_FCM_BASE_URL``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The fake's process id."""
        if self.proc is None:
            raise FakeFcmError("the fake FCM is not running")
        return self.proc.pid

    def env(self) -> dict[str, str]:
        """A worker's settings to send through this fake."""
        return {
            "PUSHES_SENDER": "fcm",
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "PUSHES_FCM_BASE_URL": self.url,
        }

    def start(self, timeout: float = 30.0) -> None:
        """Spawn the fake and wait until it answers and has written its key file."""
        command = [
            sys.executable, "-m", "app.notify.fake_fcm", "--port", str(self.port),
            "--service-account", str(self.key_file), *self.script.flags(),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            # It prints its banner once the key file is written.
            if "fake FCM on" in self.log_text():
                try:
                    self.stats()
                    return
                except OSError:
                    pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise FakeFcmError(f"the fake FCM did not start:\n{self.log_text()}")
            time.sleep(0.1)

    def _call(self, path: str, method: str = "GET", timeout: float = 120.0) -> Any:
        request = urllib.request.Request(
            self.url + path, data=b"{}" if method == "POST" else None, method=method
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())

    def stats(self) -> dict[str, Any]:
        """``/_fake/stats``: accepted and attempted counts, most requests at once."""
        body: dict[str, Any] = self._call("/_fake/stats", timeout=10)
        return body

    def accepted(self) -> dict[str, Any]:
        """``/_fake/accepted``: every accepted message with its ``at``."""
        body: dict[str, Any] = self._call("/_fake/accepted")
        return body

    def attempts(self) -> dict[str, Any]:
        """``/_fake/attempts``: every send request, with its status."""
        body: dict[str, Any] = self._call("/_fake/attempts")
        return body

    def reset(self) -> None:
        """Forget the records and counters (between two phases)."""
        self._call("/_fake/reset", method="POST", timeout=10)

    def check_alive(self) -> None:
        """Raise if the fake has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            raise FakeFcmError(
                f"the fake FCM exited with {self.proc.returncode}:\n{self.log_text()}"
            )

    def log_text(self, limit: int = 4000) -> str:
        """The end of the fake's log."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-limit:]

    def stop(self) -> None:
        """SIGTERM, SIGKILL after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
