"""One register cheque: the POS's cheque as we keep it, with the card and the loyalty
purchase attached, and the errors a request about it can meet.

Its own module because the cheque book that holds cheques and the cheque file that
stores them both build and read it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from bridge.loyalty.protocol import Cheque, ChequeLine, mask_card
from bridge.loyalty.purchase import Purchase

State = Literal["open", "calculated", "confirmed", "cancelled", "refunded"]
OPEN_STATES = ("open", "calculated")
CENT = Decimal("0.01")
MAX_LINES = 500  # one cap per cheque, whatever the number of appends; refunds address these
MAX_TOTAL = Decimal("1e9")  # one cheque's total, however many requests built it


class ChequeError(Exception):
    """A request that does not fit the cheque's state; `code` is the API's machine code."""

    def __init__(self, code: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class Line:
    goods_id: str
    name: str
    price: Decimal
    quantity: Decimal
    amount: Decimal
    barcode: str | None = None

    def wire(self, position: int) -> ChequeLine:
        return ChequeLine(
            position=position,
            goods_id=self.goods_id,
            barcode=self.barcode,
            name=self.name,
            price=self.price,
            quantity=self.quantity,
            amount=self.amount,
        )


@dataclass
class RefundRecord:
    """One refund sent (or queued): what it took back, position -> (quantity, amount)."""

    refund_id: str
    operation_id: str
    lines: dict[int, tuple[Decimal, Decimal]]
    queued: bool = False


@dataclass
class RegisterCheque:
    id: str
    number: str
    opened_at: datetime
    lines: list[Line] = field(default_factory=list)
    card: str | None = None
    state: State = "open"
    purchase: Purchase | None = None
    balance_before: Decimal | None = None
    discount: Decimal = Decimal(0)
    available: Decimal = Decimal(0)
    redeemed: Decimal = Decimal(0)
    accrued: Decimal | None = None
    balance_after: Decimal | None = None
    offline: bool = False
    queued: bool = False
    card_blocked: bool = False
    cashier_message: str | None = None
    cheque_message: str | None = None
    expired: bool = False
    refunds: list[RefundRecord] = field(default_factory=list)
    touched_at: float = field(default_factory=time.time)  # wall clock: survives a restart
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _wire: tuple[list[Line], Cheque] | None = field(default=None, repr=False)

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def masked_card(self) -> str | None:
        return mask_card(self.card) if self.card else None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    def wire(self) -> Cheque:
        """The contract's cheque, built once per version of the lines."""
        if not self.lines:
            raise ChequeError("empty_cheque", "the cheque has no lines yet", 422)
        if self._wire is None or self._wire[0] is not self.lines:
            self._wire = (
                self.lines,
                Cheque(
                    number=self.number,
                    date=self.opened_at,
                    lines=[line.wire(i + 1) for i, line in enumerate(self.lines)],
                ),
            )
        return self._wire[1]

    def refunded(self) -> dict[int, tuple[Decimal, Decimal]]:
        """Position -> (quantity, amount) refunded so far, queued refunds included."""
        out: dict[int, tuple[Decimal, Decimal]] = {}
        for refund in self.refunds:
            for pos, (qty, amount) in refund.lines.items():
                q, a = out.get(pos, (Decimal(0), Decimal(0)))
                out[pos] = (q + qty, a + amount)
        return out

    def reset_loyalty(self) -> None:
        """Forget everything processing said for the card this cheque had."""
        self.purchase = None
        self.balance_before = self.accrued = self.balance_after = None
        self.discount = self.available = self.redeemed = Decimal(0)
        self.offline = self.queued = self.card_blocked = False
        self.cashier_message = self.cheque_message = None
        self.state = "open"

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "state": self.state,
            "card": self.masked_card,
            "total": self.total,
            "discount": self.discount,
            "availableBonuses": self.available,
            "redeemed": self.redeemed,
            "accrued": self.accrued,
            "balanceBefore": self.balance_before,
            "balanceAfter": self.balance_after,
            "offline": self.offline,
            "queued": self.queued,
            "cardBlocked": self.card_blocked,
            "cashierMessage": self.cashier_message,
            "chequeMessage": self.cheque_message,
            "purchaseId": self.purchase.purchase_id if self.purchase else None,
            "lines": [
                {
                    "position": i + 1,
                    "goodsId": ln.goods_id,
                    "barcode": ln.barcode,
                    "name": ln.name,
                    "price": ln.price,
                    "quantity": ln.quantity,
                    "amount": ln.amount,
                }
                for i, ln in enumerate(self.lines)
            ],
        }
