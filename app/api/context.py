"""What the views work with, handed over once by the composition root.

Faust creates a view per route with only the app, so the app carries the
context (``register`` in :mod:`app.api` sets it) and the views read it
through :func:`context_of`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faust import web

from app.config import Settings
from app.ops.readiness import ReadinessState


@dataclass(frozen=True)
class ApiContext:
    """The settings, tables and topics the HTTP API uses."""

    settings: Settings
    tokens_table: Any
    tokens_topic: Any
    readiness: Callable[[], ReadinessState]
    #: The user's notifications waiting in the retry schedule (on this worker).
    retries_of: Callable[[str], list[dict[str, Any]]] = lambda user_id: []


def context_of(view: web.View) -> ApiContext:
    """The context of the app ``view`` belongs to."""
    context: ApiContext = view.app.api_context  # type: ignore[attr-defined]
    return context
