"""The HTTP API, served by the worker's Faust web server (aiohttp).

``POST /tokens`` registers a device's push token and
``DELETE /tokens/{user_id}/{device_id}`` removes one.  Both publish an event
to the tokens topic and answer ``202`` only once Kafka acknowledged it
(acks=all), so an accepted request is never lost.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from aiohttp import web as aiohttp_web
from aiokafka.errors import KafkaError
from faust import web

from app.application import app
from app.models import InvalidRecord, TokenEvent, decode_json, parse_token_event
from app.partitioning import user_key
from app.topics import tokens_topic

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024


class HttpProblem(Exception):
    """A request the API refuses, with the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_registration_body(body: bytes, content_type: str) -> TokenEvent:
    """Validate a ``POST /tokens`` body into a registration event."""
    if content_type != "application/json":
        raise HttpProblem(415, "the body must be JSON (Content-Type: application/json)")
    if len(body) > MAX_BODY_BYTES:
        raise HttpProblem(413, f"the body is over the {MAX_BODY_BYTES} byte limit")
    try:
        data = decode_json(body, MAX_BODY_BYTES)
        if isinstance(data, dict) and data.get("token", "") is None:
            raise InvalidRecord("token must be a string; to remove a device use DELETE")
        return parse_token_event(data)
    except InvalidRecord as exc:
        raise HttpProblem(400, str(exc)) from None


async def publish_token_event(event: TokenEvent) -> dict[str, Any]:
    """Produce ``event`` to the tokens topic and wait for Kafka's acknowledgement."""
    value = json.dumps(event.to_json(), separators=(",", ":")).encode("utf-8")
    pending = await tokens_topic.send(key=user_key(event.user_id), value=value)
    metadata = await pending
    return {"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset}


@app.page("/tokens")
class TokensView(web.View):
    """``POST /tokens``: register (or replace) a device's push token."""

    async def post(self, request: web.Request) -> web.Response:
        """Validate, publish, answer 202 after Kafka's ack."""
        try:
            body = await _read_body(request)
            event = parse_registration_body(body, _aiohttp(request).content_type)
        except HttpProblem as problem:
            return self.error(problem.status, problem.message)
        return await _publish(self, event, "registered")


@app.page("/tokens/{user_id}/{device_id}")
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


async def _read_body(request: web.Request) -> bytes:
    # Read at most one byte past the limit: enough to refuse it, without
    # buffering whatever a client chooses to send.
    raw = _aiohttp(request)
    if (raw.content_length or 0) > MAX_BODY_BYTES:
        raise HttpProblem(413, f"the body is over the {MAX_BODY_BYTES} byte limit")
    body: bytes = await raw.content.read(MAX_BODY_BYTES + 1)
    return body


async def _publish(view: web.View, event: TokenEvent, outcome: str) -> web.Response:
    try:
        where = await publish_token_event(event)
    except KafkaError as exc:
        log.error("could not publish token event for user %s: %r", event.user_id, exc)
        return view.error(503, "the token could not be stored; try again later")
    return view.json(
        {
            "status": outcome,
            "user_id": event.user_id,
            "device_id": event.device_id,
            **where,
        },
        status=202,
    )
