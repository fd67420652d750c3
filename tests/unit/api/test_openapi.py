import re

import pytest

import app as _app  # noqa: F401  (registers the views)
from app import app
from app.api.openapi import build_openapi
from app.api.tokens import MAX_BODY_BYTES
from app.config import Settings
from app.domain.records import MAX_TOKEN_CHARS, MAX_USER_ID_CHARS

METHODS = {"get", "post", "put", "patch", "delete"}


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


def test_a_configured_token_is_declared_with_its_401_and_403():
    doc = document(PUSHES_API_TOKEN="s3cret")
    assert doc["security"] == [{"bearer": []}]
    for path, method, op in _operations(doc, with_names=True):
        if path in ("/healthz", "/readyz"):
            assert op["security"] == [] and "401" not in op["responses"]
        else:
            assert {"401", "403"} <= set(op["responses"]), (path, method)
    assert "s3cret" not in repr(doc)


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
