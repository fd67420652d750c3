import json
import logging

from app.domain.messages import notification_line
from app.notify.base import Delivery
from app.notify.log import LogSender
from app.ops.logs import JsonFormatter, json_log_line, log_many


def record(msg: str, *args, **extra) -> logging.LogRecord:
    rec = logging.LogRecord("pushes.test", logging.INFO, __file__, 1, msg, args, None)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


def test_a_json_line_carries_the_exact_message_and_the_fields():
    line = notification_line("tok-123", "Payment p-1 of 100.00 RUB succeeded")
    parsed = json.loads(
        json_log_line(record("%s", line, token="tok-123", payment_id="p-1", user_id="42"))
    )
    assert parsed["message"] == line
    assert (parsed["token"], parsed["payment_id"], parsed["user_id"]) == ("tok-123", "p-1", "42")
    assert parsed["level"] == "INFO" and parsed["logger"] == "pushes.test"
    assert parsed["time"].endswith("+00:00")


def test_unknown_record_attributes_are_not_copied():
    parsed = json.loads(json_log_line(record("hello", password="hunter2", partition=3)))
    assert "password" not in parsed and parsed["partition"] == 3


def test_exceptions_are_kept_in_one_line():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = record("failed")
        rec.exc_info = sys.exc_info()
    text = JsonFormatter().format(rec)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["exception"]


def delivery(token: str = "tok-1", body: str = "Payment p-9 of 1.00 RUB succeeded") -> Delivery:
    return Delivery(
        user_id="7",
        device_id="d",
        token=token,
        platform=None,
        title="Payment succeeded",
        body=body,
        payment_id="p-9",
        status="succeeded",
        amount="1.00",
        currency="RUB",
    )


async def test_the_log_sender_logs_the_line_with_fields(caplog):
    caplog.set_level(logging.INFO, logger="pushes.notifications")
    outcomes = await LogSender().send([delivery()])
    (rec,) = caplog.records
    assert rec.getMessage() == notification_line("tok-1", "Payment p-9 of 1.00 RUB succeeded")
    assert (rec.token, rec.payment_id, rec.user_id) == ("tok-1", "p-9", "7")
    assert [o.kind for o in outcomes] == ["delivered"]


async def test_the_log_sender_can_leave_the_fields_out(caplog):
    caplog.set_level(logging.INFO, logger="pushes.notifications")
    await LogSender(fields=False).send([delivery(body="hello")])
    (rec,) = caplog.records
    assert rec.getMessage() == notification_line("tok-1", "hello")
    assert not hasattr(rec, "token") and not hasattr(rec, "payment_id")


def test_a_batch_writes_the_same_lines_as_one_call_per_line(tmp_path):
    """log_many: the lines logging would write, with one write per handler."""
    formatter = logging.Formatter("[%(asctime)s] [%(process)s] [%(levelname)s]: %(message)s ")

    def logger_to(path):
        handler = logging.FileHandler(path)
        handler.setFormatter(formatter)
        logger = logging.Logger(f"t-{path.name}")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        return logger, handler

    lines = [
        f"send notification to mobile app with token: t{i} and message: m{i}" for i in range(5)
    ]
    one_by_one, h1 = logger_to(tmp_path / "a.log")
    batched, h2 = logger_to(tmp_path / "b.log")
    for line in lines:
        one_by_one.info(line)
    log_many(batched, logging.INFO, [(line, {}) for line in lines])
    h1.close()
    h2.close()
    strip = lambda text: [row.split("] ", 3)[-1] for row in text.splitlines()]  # noqa: E731
    a, b = (tmp_path / "a.log").read_text(), (tmp_path / "b.log").read_text()
    assert strip(a) == strip(b) and len(b.splitlines()) == 5
    log_many(batched, logging.DEBUG, [("not shown", {})])
    assert "not shown" not in (tmp_path / "b.log").read_text()
