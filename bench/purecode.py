"""Import the worker's pure modules (``app.models``, ``app.messages``...) without Faust.

``app/__init__.py`` imports the agents, which build the Faust app.  The
baseline consumer must do the worker's exact per-record work (same parser,
same rendering, same line) but must not load Faust, so it registers ``app``
as a bare package first: ``import app.models`` then runs only that module.
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
    """Whether this process has imported Faust (the baseline must not)."""
    return "faust" in sys.modules
