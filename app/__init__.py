"""pushes: payment outcomes joined with push tokens, as a Faust worker.

``faust -A app worker`` asks this package for :data:`app`, the Faust app.
It is built on first access only (:mod:`app.main`, the composition root), so
``import app.domain.records`` loads no Faust and reads no settings.
"""

from __future__ import annotations

from typing import Any

__all__ = ["app"]


def __getattr__(name: str) -> Any:
    if name == "app":
        from app.main import app as faust_app

        return faust_app
    raise AttributeError(f"module 'app' has no attribute {name!r}")
