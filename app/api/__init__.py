"""The HTTP surface, registered on the app in one place.

- :mod:`app.api.tokens`: registering, showing and removing devices;
- :mod:`app.api.ops`: ``/healthz``, ``/readyz``, ``/metrics``, ``/stats``, ``/openapi.json``;
- :mod:`app.api.middleware`: JSON errors, request metrics and authentication around all of them;
- :mod:`app.api.auth`: who may call; :mod:`app.api.problems`: the one refusal type;
- :mod:`app.api.openapi`: the description, built from the settings.
"""

from __future__ import annotations

from typing import Any

from app.api import ops, tokens
from app.api.context import ApiContext


def register(app: Any, context: ApiContext) -> None:
    """Serve the API's views on ``app`` with ``context``."""
    app.api_context = context
    for blueprint in (tokens.blueprint, ops.blueprint):
        blueprint.register(app, url_prefix="")
