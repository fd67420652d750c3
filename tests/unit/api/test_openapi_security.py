"""The security part of the OpenAPI document, merged into build_openapi's."""

from __future__ import annotations

import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from app.api import refusals as r
from app.api.openapi import build_openapi
from app.api.openapi_security import (
    PUBLIC_OPERATIONS,
    SERVICE_SCHEME,
    USER_OPERATIONS,
    USER_SCHEME,
    apply_security,
    operation_security,
    security_schemes,
)
from app.config import Settings

BODY_LIMIT = 16 * 1024
USERS = {
    "PUSHES_USER_JWKS_URL": "https://login.example.test/jwks",
    "PUSHES_USER_JWT_ISSUER": "https://login.example.test/",
    "PUSHES_USER_JWT_AUDIENCE": "pushes-api",
}
BOTH = {"PUSHES_API_TOKEN": "s3cret", **USERS}


def document(env: dict[str, str]) -> dict:
    # build_openapi applies the security itself: the served document is this one.
    return build_openapi(Settings.from_env(env), BODY_LIMIT)


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


@pytest.mark.parametrize("env", [{}, {"PUSHES_API_TOKEN": "s3cret"}, USERS, BOTH])
def test_the_document_stays_valid_openapi(env):
    doc = document(env)
    errors = [str(e).splitlines()[0] for e in OPENAPI_31_VALIDATOR.iter_errors(doc)]
    assert errors == []


def test_both_schemes_are_declared_the_user_one_as_a_jwt():
    schemes = document(BOTH)["components"]["securitySchemes"]
    assert set(schemes) == {SERVICE_SCHEME, USER_SCHEME}
    assert schemes[SERVICE_SCHEME]["scheme"] == schemes[USER_SCHEME]["scheme"] == "bearer"
    assert schemes[USER_SCHEME]["bearerFormat"] == "JWT"
    assert "pushes-api" in schemes[USER_SCHEME]["description"]
    assert "bearerFormat" not in schemes[SERVICE_SCHEME]


def test_token_operations_take_either_scheme_and_the_others_only_the_service_token():
    doc = document(BOTH)
    assert "security" not in doc
    for path, method, operation in operations(doc):
        if (path, method) in PUBLIC_OPERATIONS:
            assert operation["security"] == []
        elif (path, method) in USER_OPERATIONS or path == "/openapi.json":
            assert operation["security"] == [{SERVICE_SCHEME: []}, {USER_SCHEME: []}]
        else:
            assert operation["security"] == [{SERVICE_SCHEME: []}], path


def test_every_guarded_operation_documents_401_403_429_and_the_key_set_503():
    doc = document(BOTH)
    for path, method, operation in operations(doc):
        answers = operation["responses"]
        if (path, method) in PUBLIC_OPERATIONS:
            assert not {"401", "403", "429"} & set(answers)
            continue
        assert "WWW-Authenticate" in answers["401"]["headers"]
        assert "Retry-After" in answers["429"]["headers"]
        assert r.EXPIRED in answers["401"]["description"]
        assert r.KEYS_UNAVAILABLE in answers["503"]["description"]
        expected_403 = r.USER_MISMATCH if (path, method) in USER_OPERATIONS else r.SERVICE_ONLY
        if path != "/openapi.json":
            assert expected_403 in answers["403"]["description"]
    post = doc["paths"]["/tokens"]["post"]["responses"]
    assert r.TOO_MANY_REGISTRATIONS in post["429"]["description"]
    # The document's own 503 (Kafka) is kept, extended.
    assert "Kafka" in post["503"]["description"]


def test_every_refusal_code_is_named_in_the_documents():
    # bad_service_token is only possible without user JWTs.
    text = repr(document(BOTH)) + repr(document({"PUSHES_API_TOKEN": "s3cret"}))
    codes = {
        value
        for name, value in vars(r).items()
        if name.isupper() and isinstance(value, str) and name != "REALM"
    }
    missing = {code for code in codes if code not in text}
    # A bad user id is the document's own 400 ("the user id is invalid").
    assert missing == {r.BAD_USER_ID}


def test_a_service_token_only_api_has_one_scheme_and_its_403():
    doc = document({"PUSHES_API_TOKEN": "s3cret"})
    assert set(doc["components"]["securitySchemes"]) == {SERVICE_SCHEME}
    post = doc["paths"]["/tokens"]["post"]
    assert post["security"] == [{SERVICE_SCHEME: []}]
    assert r.BAD_SERVICE_TOKEN in post["responses"]["403"]["description"]
    assert r.TOO_MANY_REGISTRATIONS not in post["responses"]["429"]["description"]
    assert "503" not in doc["paths"]["/stats"]["get"]["responses"]


def test_users_without_a_service_token_say_the_service_endpoints_refuse_everyone():
    schemes = security_schemes(Settings.from_env(USERS))
    assert "Not configured" in schemes[SERVICE_SCHEME]["description"]


def test_an_open_api_declares_no_security_but_the_admin_header_403():
    doc = document({})
    assert "securitySchemes" not in doc["components"] and "security" not in doc
    for path, method, operation in operations(doc):
        assert "security" not in operation or (path, method) in PUBLIC_OPERATIONS
        assert not {"401", "429"} & set(operation["responses"])
    get = doc["paths"]["/tokens/{user_id}"]["get"]["responses"]
    assert r.BAD_ADMIN_TOKEN in get["403"]["description"]


def test_the_error_schema_gains_the_code():
    schema = document(BOTH)["components"]["schemas"]["Error"]
    assert schema["required"] == ["error"] and "code" in schema["properties"]


@pytest.mark.parametrize("env", [{}, {"PUSHES_API_TOKEN": "s3cret"}, USERS, BOTH])
def test_applying_the_security_again_changes_nothing(env):
    settings = Settings.from_env(env)
    doc = build_openapi(settings, BODY_LIMIT)
    assert apply_security(doc, settings) == doc


def test_the_input_document_is_not_changed():
    settings = Settings.from_env(BOTH)
    original = build_openapi(settings, BODY_LIMIT)
    snapshot = repr(original)
    apply_security(original, settings)
    assert repr(original) == snapshot


def test_operation_security_alone_for_one_operation():
    settings = Settings.from_env(BOTH)
    assert operation_security(settings, "/healthz", "GET") == {"security": [], "responses": {}}
    delete = operation_security(settings, "/tokens/{user_id}/{device_id}", "DELETE")
    assert set(delete["responses"]) == {"401", "403", "429", "503"}
