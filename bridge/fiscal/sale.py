"""A confirmed cheque as a fiscal sale: items with tax, payments, and the loyalty lines.

The loyalty block is the very block the ESC/POS receipt gets (balance, redeemed,
accrued; or the offline notice while processing is unreachable), laid out at the
width the registrar reports, and printed inside the receipt before the total.  A
discount processing gave the cheque is spread over its lines, because the fiscal
storage records each line's sum after discounts, and those sums must add up to the
payments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING

from bridge.receipts.cheque_block import block_for
from drivers.fiscal.base import FiscalItem, FiscalPayment, PaymentKind, TaxRate, TaxSystem
from drivers.printer.document import render_text

if TYPE_CHECKING:
    from bridge.service.cheque import RegisterCheque

CENT = Decimal("0.01")
MAX_NAME = 128  # what the FN takes for a position's name


class SaleError(ValueError):
    """The request does not fit the cheque; `code` is the API's machine code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class LineFiscal:
    """What the POS may set per line; None takes the registrar's default."""

    tax: TaxRate | None = None
    payment_method: int | None = None
    payment_object: int | None = None


@dataclass(frozen=True)
class FiscalRequest:
    payments: Sequence[FiscalPayment]
    lines: Mapping[int, LineFiscal] = field(default_factory=dict)  # position (1-based) -> set


@dataclass(frozen=True)
class FiscalSale:
    items: list[FiscalItem]
    payments: list[FiscalPayment]
    messages: list[str]
    tax_system: TaxSystem

    @property
    def to_pay(self) -> Decimal:
        return sum((item.amount for item in self.items), Decimal(0))


def loyalty_lines(cheque: RegisterCheque, language: str, width: int) -> list[str]:
    """The loyalty block as print_rec_message lines, none wider than `width`."""
    block = block_for(cheque).to_receipt(language)
    return [line.rstrip() or " " for line in render_text(block, width)]


def line_amounts(amounts: Sequence[Decimal], discount: Decimal) -> list[Decimal]:
    """`amounts` less `discount`, spread in proportion to each line, to the cent; the last
    line with a sum takes the remainder so the result adds up exactly."""
    total = sum(amounts, Decimal(0))
    if discount <= 0 or total <= 0:
        return list(amounts)
    discount = min(discount, total)
    shares = [(a * discount / total).quantize(CENT, ROUND_DOWN) for a in amounts]
    rest = discount - sum(shares, Decimal(0))
    out = [a - s for a, s in zip(amounts, shares, strict=True)]
    for i in range(len(out) - 1, -1, -1):  # the cents left over, from the last line back
        take = min(rest, out[i])
        out[i] -= take
        rest -= take
        if rest <= 0:
            break
    return out


def compose(
    cheque: RegisterCheque,
    request: FiscalRequest,
    *,
    default_tax: TaxRate,
    tax_system: TaxSystem,
    language: str,
    width: int,
) -> FiscalSale:
    unknown = sorted(p for p in request.lines if not 1 <= p <= len(cheque.lines))
    if unknown:
        raise SaleError(
            "bad_lines",
            f"no such positions on the cheque: {', '.join(map(str, unknown))}"
            f" (it has {len(cheque.lines)})",
        )
    amounts = line_amounts([ln.amount for ln in cheque.lines], cheque.discount)
    items = []
    for pos, (line, amount) in enumerate(zip(cheque.lines, amounts, strict=True), 1):
        given = request.lines.get(pos, LineFiscal())
        items.append(
            FiscalItem(
                name=line.name[:MAX_NAME],
                quantity=line.quantity,
                price=line.price,
                amount=amount,
                tax=given.tax or default_tax,
                payment_method=given.payment_method or 4,
                payment_object=given.payment_object or 1,
            )
        )
    sale = FiscalSale(
        items=items,
        payments=list(request.payments),
        messages=loyalty_lines(cheque, language, width),
        tax_system=tax_system,
    )
    _check_payments(sale)
    return sale


def _check_payments(sale: FiscalSale) -> None:
    """Payments cover the sum to pay; only cash may exceed it (the change)."""
    paid = sum((p.amount for p in sale.payments), Decimal(0))
    cashless = sum((p.amount for p in sale.payments if p.kind is not PaymentKind.CASH), Decimal(0))
    if paid < sale.to_pay:
        raise SaleError(
            "payments_short",
            f"payments total {paid}, less than the {sale.to_pay} to pay"
            " (the cheque's lines less its loyalty discount)",
        )
    if cashless > sale.to_pay:
        raise SaleError(
            "payments_over",
            f"non-cash payments total {cashless}, more than the {sale.to_pay} to pay;"
            " only cash may exceed it (the change)",
        )
