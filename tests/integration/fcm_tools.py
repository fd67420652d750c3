"""The local fake FCM as a separate process, for tests of a real worker sending real pushes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.integration.harness import REPO, free_port


class FakeFcmProcess:
    """``python -m app.notify.fake_fcm`` on a free port, with its own service-account file."""

    def __init__(self, workdir: Path, **flags: str) -> None:
        self.port = free_port()
        self.key_file = workdir / "service-account.json"
        self.log_path = workdir / "fake-fcm.log"
        args = [
            sys.executable,
            "-m",
            "app.notify.fake_fcm",
            "--port",
            str(self.port),
            "--service-account",
            str(self.key_file),
            "--seed",
            "7",
        ]
        for name, value in flags.items():
            args += ["--" + name.replace("_", "-"), value]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/_fake/stats")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(self.log_path.read_text()) from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """A worker's settings to send through this fake."""
        return {
            "PUSHES_SENDER": "fcm",
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "PUSHES_FCM_BASE_URL": self.url,
        }

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def script(self, **changes: Any) -> Any:
        """Change the fake's script (see app.notify.fake_fcm.Script)."""
        req = urllib.request.Request(
            self.url + "/_fake/script",
            data=json.dumps(changes).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def accepted(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.get("/_fake/accepted")["accepted"]
        return records

    def attempts(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.get("/_fake/attempts")["attempts"]
        return records

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def sent_pairs(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(token, payment_id)`` of each accepted or attempted message."""
    return [
        (m["message"]["token"], m["message"]["data"]["payment_id"])
        for m in messages
        if m.get("message")
    ]
