"""The HTTP API, served by the worker's Faust web server (aiohttp).

``POST /tokens`` registers a device's push token and
``DELETE /tokens/{user_id}/{device_id}`` removes one.  Both publish an event
to the tokens topic and answer ``202`` only once Kafka acknowledged it
(acks=all), so an accepted request is never lost.  They wait at most
``PUSHES_PUBLISH_TIMEOUT_SECONDS`` for that, the enqueue included (the
producer may first wait for metadata); past it, or on a Kafka error, they
answer ``503`` with ``Retry-After``: the event was not stored.  The producer
may still deliver it later; that is harmless, a registration or removal
applied twice is applied once.  ``GET /tokens/{user_id}`` shows a user's
devices, tokens masked (unless the service, or an open API's caller, holds
the admin secret), from whichever worker owns the user, waiting at most
``PUSHES_ROUTE_TIMEOUT_SECONDS`` for it (then ``504``).

Who may act for which user is the guard's (:mod:`app.api.guard_http`): its
middleware has identified the caller and, for the path's ``{user_id}``,
authorized it before a handler runs; ``POST /tokens`` learns its user from
the body, so its handler asks :func:`authorize_registration` (403 for another
user, 429 past the per-user registration limit) before publishing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timezone
from typing import Any, cast

from aiohttp import ClientError
from aiohttp import web as aiohttp_web
from aiokafka.errors import KafkaError
from faust import web
from faust.exceptions import SameNode
from faust.web.exceptions import ServiceUnavailable

from app.api.auth import ADMIN_HEADER
from app.api.callers import reveal_tokens
from app.api.context import context_of
from app.api.guard_http import CALLER, authorize_registration, refusal_response
from app.api.problems import Problem
from app.api.refusals import Refusal
from app.domain.devices import Devices, mask_token
from app.domain.partitioning import user_key
from app.domain.records import (
    InvalidRecord,
    TokenEvent,
    decode_json,
    normalize_user_id,
    parse_token_event,
)

log = logging.getLogger(__name__)
# Lines that repeat once per request while Kafka or a peer is away: under a
# name the log-flood filter summarises (the app's own loggers it lets through).
unavailable_log = logging.getLogger("pushes.api")

MAX_BODY_BYTES = 16 * 1024
#: Seconds a client waits before it retries a request Kafka could not take.
KAFKA_RETRY_AFTER_SECONDS = 5
KAFKA_UNAVAILABLE = "kafka_unavailable"
OWNER_TIMEOUT = "owner_timeout"
#: Set on a request forwarded to the partition's owner: it is never forwarded
#: again, so workers that disagree about the owner cannot bounce it forever.
ROUTED_HEADER = "X-Pushes-Routed"


blueprint = web.Blueprint("tokens")


def parse_registration_body(body: bytes, content_type: str) -> TokenEvent:
    """Validate a ``POST /tokens`` body into a registration event."""
    if content_type != "application/json":
        raise Problem(415, "the body must be JSON (Content-Type: application/json)")
    if len(body) > MAX_BODY_BYTES:
        raise Problem(413, f"the body is over the {MAX_BODY_BYTES} byte limit")
    try:
        data = decode_json(body, MAX_BODY_BYTES)
        if isinstance(data, dict):
            if data.get("token", "") is None:
                raise InvalidRecord("token must be a string; to remove a device use DELETE")
            # The API stamps registrations itself: a client's clock does not
            # decide which device is evicted first.
            data.pop("updated_at", None)
        return parse_token_event(data)
    except InvalidRecord as exc:
        raise Problem(400, str(exc)) from None


def describe_devices(
    user_id: str,
    devices: Devices,
    *,
    reveal: bool = False,
    retries: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The public view of a user's devices: tokens masked unless ``reveal``.

    ``retries`` are the user's notifications waiting in the retry schedule
    (their tokens always masked).
    """
    show = (lambda token: token) if reveal else mask_token
    return {
        "user_id": user_id,
        "devices": [
            {
                "device_id": device_id,
                "token": show(info["token"]),
                "platform": info.get("platform"),
                "updated_at": info.get("updated_at"),
            }
            for device_id, info in sorted(devices.items())
        ],
        "retries": [describe_retry(value) for value in retries or ()],
    }


def describe_retry(value: dict[str, Any]) -> dict[str, Any]:
    """The public view of one retry schedule entry (:mod:`tables.retries`)."""
    delivery = value["delivery"]
    next_at = value.get("next_at")
    when = None
    if isinstance(next_at, (int, float)) and next_at != float("inf"):
        when = datetime.fromtimestamp(next_at, timezone.utc).isoformat(timespec="milliseconds")
    return {
        "payment_id": delivery["payment_id"],
        "status": delivery["status"],
        "device_id": delivery["device_id"],
        "token": mask_token(delivery["token"]),
        "attempts": value["attempts"],
        "next_attempt_at": when,
        "last_error": value.get("last_error"),
    }


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge a token event in time, or refused it: it is not stored."""


async def publish_token_event(topic: Any, event: TokenEvent, timeout: float) -> dict[str, Any]:
    """Produce ``event`` to the tokens ``topic`` and wait for Kafka's acknowledgement.

    Waits at most ``timeout`` seconds for the send and the acknowledgement
    together; raises :class:`KafkaUnavailable` past it or on a Kafka error.
    """
    value = json.dumps(event.to_json(), separators=(",", ":")).encode("utf-8")

    async def send() -> Any:
        pending = await topic.send(key=user_key(event.user_id), value=value)
        # Shielded: the timeout must not cancel the producer's own future,
        # which it completes (and would fail on, cancelled) when Kafka answers.
        return await asyncio.shield(pending)

    try:
        metadata = await asyncio.wait_for(send(), timeout)
    except asyncio.TimeoutError:
        raise KafkaUnavailable(f"no acknowledgement from Kafka within {timeout:g} s") from None
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka refused it ({type(exc).__name__})") from exc
    return {"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset}


def kafka_unavailable_body(outcome: str) -> dict[str, str]:
    """The 503 body of a registration (``registered``) or removal (``removed``) not stored."""
    what = "the token was not stored" if outcome == "registered" else "the removal was not stored"
    return {
        "error": f"Kafka is unavailable: {what}; retry after the Retry-After seconds, "
        "with backoff (a retry is safe: it changes nothing if the first attempt got through)",
        "code": KAFKA_UNAVAILABLE,
    }


def owner_timeout_body(timeout: float) -> dict[str, str]:
    """The 504 body of a read the owning worker did not answer in time."""
    return {
        "error": f"the worker owning this user did not answer within {timeout:g} s; "
        "try again shortly",
        "code": OWNER_TIMEOUT,
    }


@blueprint.route("/tokens", name="tokens")
class TokensView(web.View):
    """``POST /tokens``: register (or replace) a device's push token."""

    async def post(self, request: web.Request) -> web.Response:
        """Validate, publish, answer 202 after Kafka's ack."""
        try:
            body = await _read_body(request)
            event = parse_registration_body(body, _aiohttp(request).content_type)
        except Problem as problem:
            return self.error(problem.status, problem.message)
        refusal = authorize_registration(_aiohttp(request), event.user_id)
        if refusal is not None:
            return _refused(refusal)
        return await _publish(self, event, "registered")


@blueprint.route("/tokens/{user_id}", name="user_tokens")
class UserTokensView(web.View):
    """``GET /tokens/{user_id}``: the user's devices, answered by the owning worker."""

    async def get(self, request: web.Request, user_id: str) -> web.Response:
        """Route to the worker that owns the user, then read the table there."""
        try:
            uid = normalize_user_id(user_id)
        except InvalidRecord as exc:
            return self.error(400, str(exc))
        context = context_of(self)
        # A user JWT (already held to its own user) never unmasks tokens.
        reveal = reveal_tokens(
            _aiohttp(request)[CALLER],
            request.headers.get(ADMIN_HEADER),
            context.settings.admin_token,
        )
        if isinstance(reveal, Refusal):
            return _refused(reveal)
        key = user_key(uid)
        if ROUTED_HEADER not in request.headers:
            timeout = context.settings.route_timeout_seconds
            try:
                return await asyncio.wait_for(
                    self._route(request, context.tokens_table.name, key), timeout
                )
            except SameNode:
                pass
            except ServiceUnavailable:
                return self.error(503, "partition owners are not known yet; try again shortly")
            # Before OSError, which TimeoutError is.
            except asyncio.TimeoutError:
                unavailable_log.warning("the owner of user %s did not answer in %d s", uid, timeout)
                return self.json(owner_timeout_body(timeout), status=504)
            except (ClientError, OSError) as exc:
                unavailable_log.warning(
                    "could not reach the owner of user %s: %s", uid, type(exc).__name__
                )
                return self.error(503, "the worker owning this user is not reachable right now")
        devices = context.tokens_table.get(key)
        if not devices:
            return self.error(404, f"no devices registered for user {uid}")
        waiting = context.retries_of(uid)
        return self.json(describe_devices(uid, devices, reveal=reveal, retries=waiting))

    async def _route(self, request: web.Request, table: str, key: bytes) -> web.Response:
        raw = _aiohttp(request)
        forwarded = raw.clone(headers={**raw.headers, ROUTED_HEADER: "1"})
        # Route by the same raw key bytes as the topic and the table, so the
        # router hashes to the partition that really holds the user.
        return await self.app.router.route_req(table, key, self.web, cast(web.Request, forwarded))


@blueprint.route("/tokens/{user_id}/{device_id}", name="device")
class DeviceView(web.View):
    """``DELETE /tokens/{user_id}/{device_id}``: remove one device."""

    async def delete(self, request: web.Request, user_id: str, device_id: str) -> web.Response:
        """Publish a removal (``token: null``), answer 202 after Kafka's ack."""
        try:
            event = parse_token_event({"user_id": user_id, "device_id": device_id, "token": None})
        except InvalidRecord as exc:
            return self.error(400, str(exc))
        return await _publish(self, event, "removed")


def _aiohttp(request: web.Request) -> aiohttp_web.Request:
    # Faust's Request type is driver-neutral; the worker's driver is aiohttp.
    return cast(aiohttp_web.Request, request)


def _refused(refusal: Refusal) -> web.Response:
    # The worker's driver is aiohttp: its responses are Faust's.
    return cast(web.Response, refusal_response(refusal))


async def _read_body(request: web.Request) -> bytes:
    # Read at most one byte past the limit: enough to refuse it, without
    # buffering whatever a client chooses to send.
    raw = _aiohttp(request)
    if (raw.content_length or 0) > MAX_BODY_BYTES:
        raise Problem(413, f"the body is over the {MAX_BODY_BYTES} byte limit")
    body: bytes = await raw.content.read(MAX_BODY_BYTES + 1)
    return body


async def _publish(view: web.View, event: TokenEvent, outcome: str) -> web.Response:
    context = context_of(view)
    try:
        where = await publish_token_event(
            context.tokens_topic, event, context.settings.publish_timeout_seconds
        )
    except KafkaUnavailable as exc:
        unavailable_log.error("token event of user %s not stored: %s", event.user_id, exc)
        return view.json(
            kafka_unavailable_body(outcome),
            status=503,
            headers={"Retry-After": str(KAFKA_RETRY_AFTER_SECONDS)},
        )
    return view.json(
        {
            "status": outcome,
            "user_id": event.user_id,
            "device_id": event.device_id,
            **where,
        },
        status=202,
    )
