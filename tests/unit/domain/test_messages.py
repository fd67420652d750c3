from decimal import Decimal

import pytest

from app.domain.messages import format_amount, notification_line, render_message
from app.domain.records import Payment


def payment(**changes):
    base = {
        "payment_id": "p-1",
        "user_id": "42",
        "status": "succeeded",
        "amount": Decimal("100"),
        "currency": "RUB",
    }
    return Payment(**{**base, **changes})


def test_success_message():
    assert render_message(payment()) == "Payment p-1 of 100.00 RUB succeeded"


def test_failure_message_carries_the_reason():
    failed = payment(payment_id="p-2", status="failed", reason="insufficient funds")
    assert render_message(failed) == "Payment p-2 of 100.00 RUB failed: insufficient funds"


def test_failure_without_reason():
    assert render_message(payment(status="failed")) == "Payment p-1 of 100.00 RUB failed"


def test_reason_is_not_shown_on_success():
    assert render_message(payment(reason="ignored")) == "Payment p-1 of 100.00 RUB succeeded"


@pytest.mark.parametrize(
    ("amount", "text"),
    [("0", "0.00"), ("0.005", "0.01"), ("12.344", "12.34"), ("1234567.5", "1234567.50")],
)
def test_amounts_have_two_decimals(amount, text):
    assert format_amount(Decimal(amount)) == text


def test_notification_line_is_word_for_word():
    assert notification_line("tok", "msg") == (
        "send notification to mobile app with token: tok and message: msg"
    )
