"""The OpenAPI 3 description of the HTTP API, served at ``GET /openapi.json``.

Built from the settings, so it tells the truth about this deployment: who
may call what (the security schemes, and the 401/403/429 answers) comes from
:mod:`app.api.openapi_security`, which declares them only when the service
token or user JWTs are configured.  The limits are the ones
:mod:`app.domain.records` and :mod:`app.api.tokens` enforce; the fuzz test
(schemathesis) holds the API to them.
"""

from __future__ import annotations

from typing import Any

from app.api.auth import ADMIN_HEADER
from app.api.openapi_security import apply_security
from app.config import Settings
from app.domain.records import (
    MAX_DEVICE_ID_CHARS,
    MAX_PLATFORM_CHARS,
    MAX_TOKEN_CHARS,
    MAX_USER_ID_CHARS,
)

# A text field as app.domain.records accepts it: no control characters (Unicode Cc),
# and something left after trimming white space.
_TEXT = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"

Schema = dict[str, Any]


def _text(max_length: int, description: str) -> Schema:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": max_length,
        "pattern": _TEXT,
        "description": description,
    }


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _json(schema_name: str, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
        },
    }
    if headers:
        response["headers"] = headers
    return response


def _error(description: str) -> Schema:
    return _json("Error", description)


def _schemas() -> Schema:
    timestamp = {"type": "string", "description": "ISO 8601, UTC, milliseconds"}
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string", "description": "what is wrong"}},
        },
        "Registration": {
            "type": "object",
            "required": ["user_id", "token"],
            "properties": {
                "user_id": {
                    "anyOf": [
                        _text(MAX_USER_ID_CHARS, 'trimmed; 42 and "42" are the same user'),
                        {"type": "integer"},
                    ]
                },
                "token": _text(MAX_TOKEN_CHARS, "the device's push token"),
                "device_id": _nullable(_text(MAX_DEVICE_ID_CHARS, 'default: "default"')),
                "platform": _nullable(_text(MAX_PLATFORM_CHARS, "e.g. android, ios")),
            },
            "description": "Other properties are ignored; updated_at is set by the API.",
        },
        "Published": {
            "type": "object",
            "required": ["status", "user_id", "device_id", "topic", "partition", "offset"],
            "properties": {
                "status": {"type": "string", "enum": ["registered", "removed"]},
                "user_id": {"type": "string"},
                "device_id": {"type": "string"},
                "topic": {"type": "string"},
                "partition": {"type": "integer", "minimum": 0},
                "offset": {"type": "integer", "minimum": 0},
            },
        },
        "Devices": {
            "type": "object",
            "required": ["user_id", "devices"],
            "properties": {
                "user_id": {"type": "string"},
                "devices": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["device_id", "token", "platform", "updated_at"],
                        "properties": {
                            "device_id": {"type": "string"},
                            "token": {
                                "type": "string",
                                "description": "first 6 and last 4 characters, unless the "
                                f"caller sent a valid {ADMIN_HEADER}",
                            },
                            "platform": {"type": ["string", "null"]},
                            "updated_at": {**timestamp, "type": ["string", "null"]},
                        },
                    },
                },
                "retries": {
                    "type": "array",
                    "description": "notifications waiting to be sent again to the user's devices",
                    "items": {
                        "type": "object",
                        "required": ["payment_id", "status", "device_id", "token", "attempts"],
                        "properties": {
                            "payment_id": {"type": "string"},
                            "status": {"type": "string"},
                            "device_id": {"type": "string"},
                            "token": {"type": "string", "description": "always masked"},
                            "attempts": {"type": "integer", "minimum": 0},
                            "next_attempt_at": {**timestamp, "type": ["string", "null"]},
                            "last_error": {"type": ["string", "null"]},
                        },
                    },
                },
            },
        },
        "Stats": {
            "type": "object",
            "required": ["worker", "partitions", "users", "devices"],
            "properties": {
                "worker": {"type": "string", "description": "this worker's canonical URL"},
                "users": {"type": "integer", "minimum": 0},
                "devices": {"type": "integer", "minimum": 0},
                "stale_devices": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "devices not registered again for 30 days",
                },
                "partitions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["partition", "users", "devices"],
                        "properties": {
                            "partition": {"type": "integer", "minimum": 0},
                            "users": {"type": "integer", "minimum": 0},
                            "devices": {"type": "integer", "minimum": 0},
                            "stale_devices": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}},
        },
        "Readiness": {
            "type": "object",
            "required": ["ready"],
            "properties": {
                "ready": {"type": "boolean"},
                "reason": {"type": "string", "description": "why not, when not ready"},
            },
        },
        "Index": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}},
        },
    }


def _user_id_param() -> Schema:
    return {
        "name": "user_id",
        "in": "path",
        "required": True,
        "schema": _text(MAX_USER_ID_CHARS, "the user id, URL-encoded"),
    }


def build_openapi(settings: Settings, max_body_bytes: int) -> Schema:
    """The OpenAPI 3.1 document for a worker running with ``settings``, its security included."""
    retry_after = {
        "Retry-After": {
            "description": "seconds until a retry may succeed",
            "schema": {"type": "integer", "minimum": 1},
        }
    }
    kafka_unavailable = {
        "503": _json(
            "Error",
            "Kafka did not acknowledge the event within "
            f"{settings.publish_timeout_seconds} s (PUSHES_PUBLISH_TIMEOUT_SECONDS), or refused "
            "it; code: kafka_unavailable. The event was not stored: retry after Retry-After "
            "seconds, with backoff (a retry is harmless if the first attempt got through)",
            retry_after,
        )
    }
    owner_unavailable = {
        "503": _error("the partition owners are not known yet, or the owner is not reachable"),
        "504": _error(
            f"the worker owning the user did not answer within {settings.route_timeout_seconds}"
            " s (PUSHES_ROUTE_TIMEOUT_SECONDS); code: owner_timeout"
        ),
    }
    not_found = {"404": _error("no such endpoint (e.g. an empty path segment)")}
    publish_errors = {
        "400": _error("the request is invalid; the message names the field"),
        **not_found,
        **kafka_unavailable,
    }
    paths: Schema = {
        "/": {
            "get": {
                "summary": "Faust's index page",
                "responses": {"200": _json("Index", 'always {"status": "OK"}')},
            }
        },
        "/tokens": {
            "post": {
                "summary": "Register or replace a device's push token",
                "description": "Answers once Kafka acknowledged the event (acks=all).",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/Registration"}
                        }
                    },
                },
                "responses": {
                    "202": _json("Published", "stored in Kafka; the table follows shortly"),
                    **publish_errors,
                    "413": _error(f"the body is over {max_body_bytes} bytes"),
                    "415": _error("the body is not application/json"),
                },
            }
        },
        "/tokens/{user_id}": {
            "parameters": [_user_id_param()],
            "get": {
                "summary": "A user's devices, tokens masked",
                "description": "Any worker answers: the request is routed to the worker that "
                "owns the user's partition.",
                "parameters": [
                    {
                        "name": ADMIN_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "the admin secret (PUSHES_ADMIN_TOKEN): show full tokens",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": _json("Devices", "the user's devices"),
                    "400": _error("the user id is invalid"),
                    "404": _error("the user has no device"),
                    **owner_unavailable,
                },
            },
        },
        "/tokens/{user_id}/{device_id}": {
            "parameters": [
                _user_id_param(),
                {
                    "name": "device_id",
                    "in": "path",
                    "required": True,
                    "schema": _text(MAX_DEVICE_ID_CHARS, "the device id, URL-encoded"),
                },
            ],
            "delete": {
                "summary": "Remove one device",
                "description": "Answers once Kafka acknowledged the removal (acks=all).",
                "responses": {
                    "202": _json("Published", "removal stored in Kafka"),
                    **publish_errors,
                },
            },
        },
        "/stats": {
            "get": {
                "summary": "Users and devices per partition owned by this worker",
                "responses": {"200": _json("Stats", "this worker's partitions")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness: the process answers",
                "security": [],
                "responses": {"200": _json("Health", "alive")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: joined the group, tables recovered, topics checked, "
                "the broker answering",
                "security": [],
                "responses": {
                    "200": _json("Readiness", "ready for traffic"),
                    "503": _json("Readiness", "not ready; the reason says why"),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                },
            }
        },
    }
    document: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "pushes",
            "version": "1",
            "description": "Push tokens for payment notifications. Every error is "
            '{"error": "<what is wrong>"}.',
        },
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
    return apply_security(document, settings)
