"""The HTTP surface, registered on the app in one place.

- :mod:`app.api.tokens`: registering, showing and removing devices;
- :mod:`app.api.ops`: ``/healthz``, ``/readyz``, ``/metrics``, ``/stats``, ``/openapi.json``;
- :mod:`app.api.middleware`: JSON errors, request metrics and the guard around all of them;
- :mod:`app.api.guard` and :mod:`app.api.guard_http`: who may call what (the service
  token, user JWTs, the admin secret of :mod:`app.api.auth`) and the abuse limits;
  :mod:`app.api.refusals`: every answer they refuse with; :mod:`app.api.problems`:
  the handlers' own refusals;
- :mod:`app.api.openapi`: the description, built from the settings.
"""

from __future__ import annotations

from typing import Any

from app.api import ops, tokens
from app.api.context import ApiContext
from app.api.guard import RequestGuard
from app.api.guard_http import serve_with


def register(app: Any, context: ApiContext, guard: RequestGuard) -> None:
    """Serve the API's views on ``app`` with ``context``; ``guard`` lives as long as the server.

    ``guard`` is the one :func:`app.api.middleware.middlewares` was given.
    """
    app.api_context = context
    for blueprint in (tokens.blueprint, ops.blueprint):
        blueprint.register(app, url_prefix="")
    serve_with(app.web.web_app, guard)
