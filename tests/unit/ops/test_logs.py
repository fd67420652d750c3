import json
import logging

from app.domain.messages import notification_line
from app.notify.log import LogNotifier
from app.ops.logs import JsonFormatter, json_log_line


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


async def test_the_notifier_logs_the_line_with_fields(caplog):
    caplog.set_level(logging.INFO, logger="pushes.notifications")
    await LogNotifier().send(
        "tok-1", "Payment p-9 of 1.00 RUB succeeded", payment_id="p-9", user_id="7"
    )
    (rec,) = caplog.records
    assert rec.getMessage() == notification_line("tok-1", "Payment p-9 of 1.00 RUB succeeded")
    assert (rec.token, rec.payment_id, rec.user_id) == ("tok-1", "p-9", "7")


async def test_the_notifier_can_leave_the_fields_out(caplog):
    caplog.set_level(logging.INFO, logger="pushes.notifications")
    await LogNotifier(fields=False).send("tok-1", "hello", payment_id="p-9", user_id="7")
    (rec,) = caplog.records
    assert rec.getMessage() == notification_line("tok-1", "hello")
    assert not hasattr(rec, "token") and not hasattr(rec, "payment_id")
