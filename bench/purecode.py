"""The worker's pure code (parsing, rendering, the line), imported without Faust.

``app/__init__.py`` imports the agents, which build the Faust app.  The
bench's contestants (the bare aiokafka baseline, the Quix Streams app) and its
expected lines must do the worker's exact per-record work (same parser, same
rendering, same line) but must not load Faust, so ``app`` is registered as a
bare package while they are imported: ``import app.models`` then runs only
that module.

This is the one place the bench imports those modules: when they move, only
the imports below change.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def without_faust() -> None:
    """Make ``import app.<module>`` skip ``app/__init__.py`` in this process.

    Does nothing where ``app`` is already imported (a test process): the
    modules are the same either way.
    """
    if "app" in sys.modules:
        return
    package = types.ModuleType("app")
    package.__path__ = [str(REPO / "app")]
    sys.modules["app"] = package


def faust_loaded() -> bool:
    """Whether this process has imported Faust (the contestants must not)."""
    return "faust" in sys.modules


def _forget(loaded: set[str]) -> None:
    """Drop ``app`` and the ``app.*`` modules not in ``loaded`` from ``sys.modules``.

    The functions imported below keep working; a later ``import app`` then
    runs the real ``app/__init__.py`` (a test process importing both the
    bench and the worker gets the worker as usual, with its own copies).
    """
    for name in set(sys.modules) - loaded:
        if name == "app" or name.startswith("app."):
            del sys.modules[name]


_loaded = set(sys.modules)
_bare = "app" not in sys.modules
without_faust()
try:
    from app.messages import render_message
    from app.models import (
        InvalidRecord,
        Payment,
        TokenEvent,
        decode_json,
        normalize_user_id,
        parse_payment,
        parse_token_event,
    )
    from app.notifier import notification_line
finally:
    if _bare:
        _forget(_loaded)

__all__ = [
    "InvalidRecord",
    "Payment",
    "TokenEvent",
    "decode_json",
    "faust_loaded",
    "normalize_user_id",
    "notification_line",
    "parse_payment",
    "parse_token_event",
    "render_message",
    "without_faust",
]
