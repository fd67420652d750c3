"""The HTTP API of a secured worker on the real broker: auth, errors, secrets, ops endpoints.

One worker runs with a bearer token, an admin secret and JSON logs, as in
production.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from tests.integration.harness import Namespace, Worker, fetch, notification, payment, produce

API_TOKEN = "api-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


def watch_readiness(worker: Worker, timeout: float = 180.0) -> list[tuple[int, dict]]:
    """Poll /readyz from the moment the port answers until it says ready."""
    seen: list[tuple[int, dict]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status, _, body = fetch(worker.url + "/readyz")
        except OSError:  # the web server is not listening yet
            time.sleep(0.05)
            continue
        seen.append((status, json.loads(body)))
        if status == 200:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"never ready: {seen[-3:]}\n{worker.output()[-3000:]}")


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    w = Worker(
        Namespace.fresh(),
        tmp_path_factory.mktemp("api"),
        PUSHES_API_TOKEN=API_TOKEN,
        PUSHES_ADMIN_TOKEN=ADMIN_TOKEN,
        PUSHES_LOG_FORMAT="json",
    )
    w.headers = dict(AUTH)
    w.start()
    w.readiness = watch_readiness(w)  # type: ignore[attr-defined]
    w.wait_ready()
    yield w
    w.stop()


def new_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def new_token() -> str:
    return "fcm:" + uuid.uuid4().hex + uuid.uuid4().hex


# --- health and readiness ------------------------------------------------------


def test_readyz_says_why_until_the_worker_has_joined_and_recovered(secured: Worker):
    statuses = [status for status, _ in secured.readiness]  # type: ignore[attr-defined]
    not_ready = [body for status, body in secured.readiness if status == 503]  # type: ignore[attr-defined]
    assert statuses[-1] == 200 and secured.readiness[-1][1] == {"ready": True}  # type: ignore[attr-defined]
    # The web server answers before the group is joined and the tables recovered.
    assert not_ready, "readyz was never seen not ready"
    assert all(body["ready"] is False and body["reason"] for body in not_ready)


def test_health_endpoints_need_no_token(secured: Worker):
    assert fetch(secured.url + "/healthz")[0] == 200
    status, _, body = fetch(secured.url + "/readyz")
    assert (status, json.loads(body)) == (200, {"ready": True})


# --- access control --------------------------------------------------------------

PROTECTED = [
    ("GET", "/"),
    ("POST", "/tokens"),
    ("GET", "/tokens/someone"),
    ("DELETE", "/tokens/someone/phone"),
    ("GET", "/stats"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/no-such-page"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_without_the_bearer_token_401_and_with_a_wrong_one_403(secured: Worker, method, path):
    body = b'{"user_id": 1, "token": "t"}' if method == "POST" else None
    status, headers, raw = fetch(secured.url + path, method, body)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in json.loads(raw)["error"]
    status, _, raw = fetch(secured.url + path, method, body, {"Authorization": "Bearer nope"})
    assert status == 403 and json.loads(raw)["error"]


@pytest.mark.parametrize("path", ["/table/tokens", "/table/tokens/42", "/router/", "/table"])
def test_fausts_table_and_router_views_are_gone(secured: Worker, path):
    status, answer = secured.request("GET", path)
    assert status == 404 and "no such endpoint" in answer["error"]


def test_tokens_are_masked_and_shown_in_full_only_to_the_admin(secured: Worker):
    user, token = new_user("mask"), new_token()
    secured.register(user, token, device_id="phone")
    secured.wait_token(user, "phone", token)

    status, answer = secured.request("GET", f"/tokens/{user}")
    assert status == 200 and answer["devices"][0]["token"] == token[:6] + "..." + token[-4:]

    status, answer = secured.request(
        "GET", f"/tokens/{user}", headers={"X-Admin-Token": ADMIN_TOKEN}
    )
    assert status == 200 and answer["devices"][0]["token"] == token

    status, answer = secured.request("GET", f"/tokens/{user}", headers={"X-Admin-Token": "guess"})
    assert status == 403 and token not in json.dumps(answer)


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type", "status", "reason"),
    [
        ("GET", "/nope", None, None, 404, "no such endpoint"),
        ("PUT", "/tokens", b"{}", "application/json", 405, "not allowed"),
        ("POST", "/stats", b"{}", "application/json", 405, "not allowed"),
        ("POST", "/tokens", b"x" * 17000, "application/json", 413, "byte limit"),
        ("POST", "/tokens", b'{"user_id": 1, "token": "t"}', "text/plain", 415, "must be JSON"),
        ("POST", "/tokens", b"{", "application/json", 400, "not valid JSON"),
        ("GET", "/tokens/" + "u" * 257, None, None, 400, "over the limit"),
        ("GET", "/tokens/a%01b", None, None, 400, "control characters"),
        ("DELETE", "/tokens/u/%7F", None, None, 400, "control characters"),
    ],
)
def test_bad_requests_get_a_clear_json_error(
    secured: Worker, method, path, body, content_type, status, reason
):
    got, answer = secured.request(method, path, body, content_type)
    assert got == status, answer
    assert reason in answer["error"]


def test_a_too_long_token_is_refused_without_echoing_it(secured: Worker):
    token = "t" * 4097
    body = json.dumps({"user_id": "u", "token": token}).encode()
    status, answer = secured.request("POST", "/tokens", body)
    assert status == 400 and "over the limit" in answer["error"] and token not in answer["error"]


# --- secrets -----------------------------------------------------------------------


def test_a_full_token_appears_only_in_the_notification_line(secured: Worker):
    namespace_payments = secured.env["PUSHES_PAYMENTS_TOPIC"]
    user, token = new_user("secret"), new_token()
    secured.register(user, token)
    secured.wait_token(user, "default", token)
    # Error paths that see the token: a bad registration, a wrong admin secret.
    secured.request("POST", "/tokens", json.dumps({"user_id": "\u0001", "token": token}).encode())
    secured.request("GET", f"/tokens/{user}", headers={"X-Admin-Token": token})
    produce(namespace_payments, [(user.encode(), payment(f"p-{user}", user))])
    line = notification(token, f"Payment p-{user} of 100.00 RUB succeeded")
    secured.wait_for(json.dumps(line)[1:-1])

    for path in ("/metrics", "/stats", f"/tokens/{user}"):
        assert token not in fetch(secured.url + path, headers=AUTH)[2].decode()
    holding = [json.loads(x) for x in secured.lines(token)]
    assert [x["message"] for x in holding] == [line]
    assert API_TOKEN not in secured.output() and ADMIN_TOKEN not in secured.output()


# --- logs ----------------------------------------------------------------------------


def test_json_logs_keep_the_exact_notification_text_and_the_token_field(secured: Worker):
    user, token = new_user("json"), new_token()
    secured.register(user, token)
    secured.wait_token(user, "default", token)
    produce(
        secured.env["PUSHES_PAYMENTS_TOPIC"],
        [(user.encode(), payment(f"pj-{user}", user, "failed", reason="card expired"))],
    )
    line = notification(token, f"Payment pj-{user} of 100.00 RUB failed: card expired")
    (raw,) = secured.wait_for(json.dumps(line)[1:-1])
    record = json.loads(raw)
    assert record["message"] == line and record["token"] == token
    assert record["level"] == "INFO" and record["logger"] == "pushes.notifications"
    # Every line of the worker is JSON, Faust's own included.
    for text in secured.output().splitlines():
        if text.startswith("{"):
            json.loads(text)
    assert sum(text.startswith("{") for text in secured.output().splitlines()) > 10


# --- metrics and stats -------------------------------------------------------------


def metrics(worker: Worker) -> str:
    status, headers, body = fetch(worker.url + "/metrics", headers=AUTH)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=")
    return body.decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if metric == name and got == wanted:
            return float(value)
    return None


def test_metrics_cover_the_join_the_tables_the_lag_and_http(secured: Worker):
    user, token = new_user("metrics"), new_token()
    before = sample(metrics(secured), "pushes_tokens_registered_total") or 0.0
    secured.register(user, token)
    secured.wait_token(user, "default", token)
    produce(secured.env["PUSHES_PAYMENTS_TOPIC"], [(user.encode(), payment(f"pm-{user}", user))])
    secured.wait_for(f"and message: Payment pm-{user} of 100.00 RUB succeeded")

    deadline = time.monotonic() + 30
    while True:  # the lag appears once the group committed an offset
        text = metrics(secured)
        if "pushes_consumer_lag{" in text or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert (sample(text, "pushes_tokens_registered_total") or 0) >= before + 1
    assert (sample(text, "pushes_notifications_total", outcome="sent") or 0) >= 1
    assert sum(sample(text, "pushes_tokens_users", partition=str(p)) or 0 for p in range(8)) >= 1
    assert sample(text, "pushes_table_keys", table="tokens", partition="0") is not None
    assert (
        sample(text, "pushes_http_requests_total", route="/tokens", method="POST", status="202")
        or 0
    ) >= 1
    assert "pushes_http_request_duration_seconds_bucket{" in text
    assert "pushes_consumer_lag{" in text
    assert "pushes_dead_letters_total" in text and "pushes_payments_without_token_total" in text
    assert user not in text  # labels never carry user ids


def test_stats_lists_every_owned_partition(secured: Worker):
    user, token = new_user("stats"), new_token()
    secured.register(user, token, device_id="a")
    secured.register(user, "x" + token, device_id="b")
    secured.wait_token(user, "b", "x" + token)
    status, stats = secured.request("GET", "/stats")
    assert status == 200
    assert [p["partition"] for p in stats["partitions"]] == list(range(8))  # one worker: all
    assert stats["users"] == sum(p["users"] for p in stats["partitions"]) >= 1
    assert stats["devices"] >= stats["users"] + 1
