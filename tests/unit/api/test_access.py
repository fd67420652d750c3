"""Which caller may reach which operation, and requests that match no route."""

import pytest

from app.api.access import Access, access_of, access_of_unmatched


@pytest.mark.parametrize(
    ("route", "method", "access"),
    [
        ("/healthz", "GET", Access.PUBLIC),
        ("/readyz", "get", Access.PUBLIC),
        ("/openapi.json", "GET", Access.ANY_CALLER),
        ("/tokens", "POST", Access.USER_IN_BODY),
        ("/tokens/{user_id}", "GET", Access.USER_IN_PATH),
        ("/tokens/{user_id}/{device_id}", "DELETE", Access.USER_IN_PATH),
        ("/stats", "GET", Access.SERVICE),
        ("/metrics", "GET", Access.SERVICE),
        ("/", "GET", Access.SERVICE),
        # A method not listed falls back to the strictest.
        ("/tokens/{user_id}", "DELETE", Access.SERVICE),
    ],
)
def test_operations_are_guarded_by_the_table_and_the_rest_is_service_only(route, method, access):
    assert access_of(route, method) is access


def test_a_wrong_method_is_answered_to_anyone_and_an_unknown_path_to_identified_callers():
    assert access_of_unmatched(405) is Access.PUBLIC
    assert access_of_unmatched(404) is Access.ANY_CALLER
