"""Human text of a notification, rendered from a payment, and the emulated push line."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from app.domain.records import Payment

_CENTS = Decimal("0.01")


def format_amount(amount: Decimal) -> str:
    """Two decimals, rounded half up as people expect for money: ``100`` -> ``100.00``."""
    return str(amount.quantize(_CENTS, rounding=ROUND_HALF_UP))


def render_message(payment: Payment) -> str:
    """``Payment p-1 of 100.00 RUB succeeded`` or ``... failed: <reason>``."""
    text = (
        f"Payment {payment.payment_id} of {format_amount(payment.amount)} "
        f"{payment.currency} {payment.status}"
    )
    if payment.status == "failed" and payment.reason:
        text += f": {payment.reason}"
    return text


def title_of(payment: Payment) -> str:
    """The notification's title: ``Payment succeeded`` or ``Payment failed``."""
    return f"Payment {payment.status}"


def notification_line(token: str, message: str) -> str:
    """The exact text of one emulated push (the default sender logs it)."""
    return f"send notification to mobile app with token: {token} and message: {message}"
