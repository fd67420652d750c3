"""Human text of a notification, rendered from a payment."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from app.models import Payment

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
