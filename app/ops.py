"""Operations endpoints: health, readiness, metrics, stats and the API description.

``/healthz`` and ``/readyz`` answer without a bearer token (orchestrators
probe them); everything else goes through :mod:`app.middleware` like the API.
"""

from __future__ import annotations

from typing import Any

from faust import web
from mode import BaseSignalT
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.application import app
from app.collectors import LagCollector, TableCollector
from app.config import settings
from app.metrics import REGISTRY
from app.middleware import install_middlewares
from app.openapi import build_openapi
from app.readiness import ReadinessState, not_ready_reason, startup
from app.stats import tokens_table_sizes
from app.web import MAX_BODY_BYTES
from tables.tokens import tokens_table

app.webserver_init_hooks.append(install_middlewares)
REGISTRY.register(TableCollector(app, tokens_table))
REGISTRY.register(LagCollector(app))


# mode's stubs accept only sync receivers here; mode awaits async ones.
@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _joined(sender: Any, *args: Any, signal: BaseSignalT[Any], **kwargs: Any) -> None:
    # Even an empty assignment means the group took this worker in.
    startup.joined_group = True


def current_readiness() -> ReadinessState:
    """Read the worker's startup state from Faust."""
    return ReadinessState(
        topics_checked=startup.topics_checked,
        joined_group=startup.joined_group,
        # TableManagerT does not declare the recovery service the manager has.
        recovery_completed=app.tables.recovery.completed.is_set(),  # type: ignore[attr-defined]
        rebalancing=bool(app.rebalancing),
        stopping=bool(app.should_stop),
    )


@app.page("/healthz")
class HealthView(web.View):
    """``GET /healthz``: the process is alive and its event loop answers."""

    async def get(self, request: web.Request) -> web.Response:
        """Always 200 while the process runs."""
        return self.json({"status": "ok"})


@app.page("/readyz")
class ReadyView(web.View):
    """``GET /readyz``: 200 once the worker can serve and process, else 503 and why."""

    async def get(self, request: web.Request) -> web.Response:
        """Check the group, the recovery and the topic check."""
        reason = not_ready_reason(current_readiness())
        if reason is None:
            return self.json({"ready": True})
        return self.json({"ready": False, "reason": reason}, status=503)


@app.page("/metrics")
class MetricsView(web.View):
    """``GET /metrics``: Prometheus text format."""

    async def get(self, request: web.Request) -> web.Response:
        """Collect every metric now."""
        # Set as a header: aiohttp refuses a charset in content_type=.
        return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@app.page("/stats")
class StatsView(web.View):
    """``GET /stats``: users and devices of each tokens partition this worker owns."""

    async def get(self, request: web.Request) -> web.Response:
        """Count the local store of every owned partition."""
        sizes = tokens_table_sizes(app, tokens_table)
        return self.json(
            {
                "worker": str(app.conf.canonical_url),
                "users": sum(s.users for s in sizes),
                "devices": sum(s.devices for s in sizes),
                "partitions": [
                    {"partition": s.partition, "users": s.users, "devices": s.devices}
                    for s in sizes
                ],
            }
        )


@app.page("/openapi.json")
class OpenApiView(web.View):
    """``GET /openapi.json``: the OpenAPI 3.1 description of this worker's API."""

    async def get(self, request: web.Request) -> web.Response:
        """Built from this worker's settings."""
        return self.json(build_openapi(settings, MAX_BODY_BYTES))
