import re

import pytest

import app as _app  # noqa: F401  (registers the views)
from app import app
from app.api import refusals as r
from app.api.openapi import build_openapi
from app.api.openapi_security import SERVICE_SCHEME, USER_SCHEME
from app.api.tokens import MAX_BODY_BYTES
from app.config import Settings
from app.domain.records import MAX_TOKEN_CHARS, MAX_USER_ID_CHARS

METHODS = {"get", "post", "put", "patch", "delete"}
USERS = {
    "PUSHES_USER_JWKS_URL": "https://login.example.test/jwks",
    "PUSHES_USER_JWT_ISSUER": "https://login.example.test/",
    "PUSHES_USER_JWT_AUDIENCE": "pushes-api",
}


def document(**env: str) -> dict:
    return build_openapi(Settings.from_env(env), MAX_BODY_BYTES)


def declared_methods(view) -> set[str]:
    return {m.lower() for m in view.get_methods()} & METHODS


def test_every_served_view_and_method_is_described_and_nothing_else():
    paths = document()["paths"]
    served = {path: declared_methods(view) for path, view in app.web.views.items()}
    served["/"] = {"get"}  # Faust's index page, the one built-in view left on
    described = {path: set(ops) & METHODS for path, ops in paths.items()}
    assert described == served


def test_open_api_without_a_token_declares_no_security():
    doc = document()
    assert "security" not in doc and "securitySchemes" not in doc["components"]
    assert all("401" not in op["responses"] for op in _operations(doc))
    assert all("429" not in op["responses"] for op in _operations(doc))


def test_a_configured_token_is_declared_per_operation_with_its_401_403_429():
    doc = document(PUSHES_API_TOKEN="s3cret")
    assert set(doc["components"]["securitySchemes"]) == {SERVICE_SCHEME}
    assert "security" not in doc  # every operation says its own
    for path, method, op in _operations(doc, with_names=True):
        if path in ("/healthz", "/readyz"):
            assert op["security"] == [] and not {"401", "403", "429"} & set(op["responses"])
        else:
            assert op["security"] == [{SERVICE_SCHEME: []}], (path, method)
            assert {"401", "403", "429"} <= set(op["responses"]), (path, method)
            assert "Retry-After" in op["responses"]["429"]["headers"]
    assert "s3cret" not in repr(doc)


def test_with_user_jwts_too_the_token_operations_take_either_scheme():
    doc = document(PUSHES_API_TOKEN="s3cret", **USERS)
    assert set(doc["components"]["securitySchemes"]) == {SERVICE_SCHEME, USER_SCHEME}
    either = [{SERVICE_SCHEME: []}, {USER_SCHEME: []}]
    for path, method in (
        ("/tokens", "post"),
        ("/tokens/{user_id}", "get"),
        ("/tokens/{user_id}/{device_id}", "delete"),
        ("/openapi.json", "get"),
    ):
        assert doc["paths"][path][method]["security"] == either, path
    for path in ("/stats", "/metrics", "/"):
        op = doc["paths"][path]["get"]
        assert op["security"] == [{SERVICE_SCHEME: []}]
        assert r.SERVICE_ONLY in op["responses"]["403"]["description"]
    post = doc["paths"]["/tokens"]["post"]["responses"]
    assert r.TOO_MANY_REGISTRATIONS in post["429"]["description"]
    assert r.USER_MISMATCH in post["403"]["description"]
    get = doc["paths"]["/tokens/{user_id}"]["get"]["responses"]
    assert r.USER_CANNOT_UNMASK in get["403"]["description"]
    assert r.BAD_ADMIN_TOKEN in get["403"]["description"]


def test_the_limits_are_the_parsers_limits():
    schemas = document()["components"]["schemas"]
    registration = schemas["Registration"]["properties"]
    assert registration["token"]["maxLength"] == MAX_TOKEN_CHARS
    assert registration["user_id"]["anyOf"][0]["maxLength"] == MAX_USER_ID_CHARS
    assert (
        str(MAX_BODY_BYTES)
        in document()["paths"]["/tokens"]["post"]["responses"]["413"]["description"]
    )


@pytest.mark.parametrize(
    ("text", "ok"),
    [("u-1", True), (" u ", True), ("", False), ("   ", False), ("a\x00b", False), ("\x85", False)],
)
def test_the_text_pattern_matches_what_the_parsers_accept(text, ok):
    pattern = document()["components"]["schemas"]["Registration"]["properties"]["token"]["pattern"]
    assert bool(re.search(pattern, text)) is ok


def _operations(doc, with_names=False):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield (path, method, op) if with_names else op


def test_publishing_documents_the_kafka_503_with_retry_after_and_the_bound():
    doc = document(PUSHES_PUBLISH_TIMEOUT_SECONDS="7")
    paths = doc["paths"]
    for op in (paths["/tokens"]["post"], paths["/tokens/{user_id}/{device_id}"]["delete"]):
        answer = op["responses"]["503"]
        assert "kafka_unavailable" in answer["description"]
        assert "within 7 s" in answer["description"]
        assert "Retry-After" in answer["headers"]


def test_a_routed_read_documents_the_owners_503_and_its_504():
    doc = document(PUSHES_ROUTE_TIMEOUT_SECONDS="3")
    answers = doc["paths"]["/tokens/{user_id}"]["get"]["responses"]
    assert "owner_timeout" in answers["504"]["description"]
    assert "within 3 s" in answers["504"]["description"]
    assert "not reachable" in answers["503"]["description"]
