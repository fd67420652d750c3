"""Operations endpoints: health, readiness, metrics, stats and the API description.

``/healthz`` and ``/readyz`` answer without a bearer token (orchestrators
probe them); everything else goes through :mod:`app.api.middleware` like the API.
"""

from __future__ import annotations

from faust import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.context import context_of
from app.api.openapi import build_openapi
from app.api.tokens import MAX_BODY_BYTES
from app.ops.metrics import REGISTRY
from app.ops.readiness import not_ready_reason
from app.ops.sizes import tokens_table_sizes

blueprint = web.Blueprint("ops")


@blueprint.route("/healthz", name="healthz")
class HealthView(web.View):
    """``GET /healthz``: the process is alive and its event loop answers."""

    async def get(self, request: web.Request) -> web.Response:
        """Always 200 while the process runs."""
        return self.json({"status": "ok"})


@blueprint.route("/readyz", name="readyz")
class ReadyView(web.View):
    """``GET /readyz``: 200 once the worker can serve and process, else 503 and why."""

    async def get(self, request: web.Request) -> web.Response:
        """Check the topic check, the group, the recovery, the broker and the sender."""
        reason = not_ready_reason(context_of(self).readiness())
        if reason is None:
            return self.json({"ready": True})
        return self.json({"ready": False, "reason": reason}, status=503)


@blueprint.route("/metrics", name="metrics")
class MetricsView(web.View):
    """``GET /metrics``: Prometheus text format."""

    async def get(self, request: web.Request) -> web.Response:
        """Collect every metric now."""
        # Set as a header: aiohttp refuses a charset in content_type=.
        return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@blueprint.route("/stats", name="stats")
class StatsView(web.View):
    """``GET /stats``: users and devices of each tokens partition this worker owns."""

    async def get(self, request: web.Request) -> web.Response:
        """Count the local store of every owned partition."""
        sizes = tokens_table_sizes(self.app, context_of(self).tokens_table)
        return self.json(
            {
                "worker": str(self.app.conf.canonical_url),
                "users": sum(s.users for s in sizes),
                "devices": sum(s.devices for s in sizes),
                "stale_devices": sum(s.stale for s in sizes),
                "partitions": [
                    {
                        "partition": s.partition,
                        "users": s.users,
                        "devices": s.devices,
                        "stale_devices": s.stale,
                    }
                    for s in sizes
                ],
            }
        )


@blueprint.route("/openapi.json", name="openapi")
class OpenApiView(web.View):
    """``GET /openapi.json``: the OpenAPI 3.1 description of this worker's API."""

    async def get(self, request: web.Request) -> web.Response:
        """Built from this worker's settings."""
        return self.json(build_openapi(context_of(self).settings, MAX_BODY_BYTES))
